import { readFile } from "node:fs/promises";
import { lowerCase, NGRAM_JOIN } from "../../training/text.js";
import { modelProtoType } from "../onnx/model-proto.js";

/**
 * How the served graph sees text, read from the ONNX graph itself (no extra bundle field): the
 * Tokenizer's token regex, whether a StringNormalizer lower-cases first, and the unigrams of its
 * vocabulary lookup (LabelEncoder keys; TfIdfVectorizer pool in dense graphs). A token outside it contributes nothing to the prediction.
 */
export class TextProfile {
  readonly vocabulary: ReadonlySet<string>;
  private readonly pattern: RegExp;
  private readonly lowercase: boolean;

  constructor(options: { vocabulary: Iterable<string>; tokenPattern: string; lowercase: boolean }) {
    this.vocabulary = new Set(options.vocabulary);
    // Unicode property classes (\p{L}: the token pattern package writes into skl2onnx text graphs) need
    // the u flag, as RE2 reads them; other patterns keep the flags the trainer compiles them with.
    this.pattern = new RegExp(options.tokenPattern, /\\[pP]\{/.test(options.tokenPattern) ? "gu" : "g");
    this.lowercase = options.lowercase;
  }

  /** Tokens of `text` as the graph tokenizes it, and how many are out of vocabulary. */
  count(text: string): { tokens: number; oov: number } {
    const tokens = (this.lowercase ? lowerCase(text) : text).match(this.pattern);
    if (!tokens) return { tokens: 0, oov: 0 };
    let oov = 0;
    for (const t of tokens) if (!this.vocabulary.has(t)) oov++;
    return { tokens: tokens.length, oov };
  }
}

interface Attr {
  name?: string;
  s?: Uint8Array;
  i?: number | { toNumber(): number };
  ints?: (number | { toNumber(): number })[];
  strings?: Uint8Array[];
}
interface Node {
  op_type?: string;
  attribute?: Attr[];
}

const utf8 = new TextDecoder();
const num = (v: number | { toNumber(): number } | undefined) =>
  v === undefined ? undefined : typeof v === "number" ? v : v.toNumber();

/**
 * The text profile of an ONNX text classifier, or undefined when the graph has no Tokenizer feeding
 * a vocabulary lookup (tabular models, foreign graphs): OOV rate is then not reported. Two layouts:
 * the sparse graph looks n-grams up with a LabelEncoder (its unigram keys are the vocabulary), the
 * dense graph of earlier bundles counts them with a TfIdfVectorizer (its unigram pool).
 */
export function textProfileFromOnnx(bytes: Uint8Array): TextProfile | undefined {
  const model = modelProtoType().decode(bytes) as unknown as { graph?: { node?: Node[] } };
  const nodes = model.graph?.node ?? [];
  const attr = (node: Node | undefined, name: string) => node?.attribute?.find((a) => a.name === name);
  const tokenizer = nodes.find((n) => n.op_type === "Tokenizer");
  const tokenexp = attr(tokenizer, "tokenexp")?.s;
  if (!tokenexp) return undefined;
  const unigrams = sparseUnigrams(nodes, attr) ?? denseUnigrams(nodes, attr);
  if (!unigrams) return undefined;
  const normalizer = nodes.find((n) => n.op_type === "StringNormalizer");
  const lowercase = utf8.decode(attr(normalizer, "case_change_action")?.s ?? new Uint8Array()) === "LOWER";
  return new TextProfile({ vocabulary: unigrams, tokenPattern: utf8.decode(tokenexp), lowercase });
}

type AttrOf = (node: Node | undefined, name: string) => Attr | undefined;

function sparseUnigrams(nodes: Node[], attr: AttrOf): string[] | undefined {
  const encoder = nodes.find((n) => n.op_type === "LabelEncoder" && attr(n, "keys_strings"));
  const keys = attr(encoder, "keys_strings")?.strings?.map((s) => utf8.decode(s));
  const unigrams = keys?.filter((k) => !k.includes(NGRAM_JOIN));
  return unigrams && unigrams.length > 0 ? unigrams : undefined;
}

function denseUnigrams(nodes: Node[], attr: AttrOf): string[] | undefined {
  const tfidf = nodes.find((n) => n.op_type === "TfIdfVectorizer");
  const pool = attr(tfidf, "pool_strings")?.strings;
  const starts = attr(tfidf, "ngram_counts")?.ints?.map((v) => num(v)!);
  const minN = num(attr(tfidf, "min_gram_length")?.i) ?? 1;
  if (!pool || !starts || starts.length === 0 || minN !== 1) return undefined;
  const end = starts.length > 1 ? starts[1]! : pool.length;
  return pool.slice(starts[0]!, end).map((s) => utf8.decode(s));
}

export async function readTextProfile(modelPath: string): Promise<TextProfile | undefined> {
  return textProfileFromOnnx(await readFile(modelPath));
}
