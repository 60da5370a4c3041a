import {
  decodeModel,
  ELEM_TYPE,
  encodeModel,
  makeMessage,
  type OnnxAttribute,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxValueInfo,
  toNumber,
} from "../onnx/model-proto.js";
import { UserError } from "../util/errors.js";

/**
 * Reading and minimally rewriting an ONNX classifier a user exported elsewhere (skl2onnx, PyTorch),
 * so the bundle's model.onnx is the same graph in the form modelship serves:
 * - a ZipMap output (skl2onnx's default) is removed and the tensor it consumed becomes the output;
 * - logits get a Softmax node, so the served scores are probabilities;
 * - StringNormalizer nodes name a locale every glibc ships (C.UTF-8) instead of en_US.UTF-8, which
 *   slim images and many hosts lack (parity with the original is checked by src/package/package.ts).
 * Pure functions over decoded protobuf messages; the bytes round-trip unchanged when nothing is edited.
 */

/** The locale every glibc (and the model server image) has. */
export const PORTABLE_LOCALE = "C.UTF-8";
/** onnxruntime's StringNormalizer default when the attribute is absent. */
export const ORT_DEFAULT_LOCALE = "en_US.UTF-8";

export interface GraphClasses {
  labels: string[];
  kind: "string" | "int64";
  /** Node and attribute they were read from, for messages. */
  source: string;
}

export interface GraphInfo {
  classes: GraphClasses | undefined;
  zipMap: { output: string; input: string } | undefined;
  /** Locales StringNormalizer nodes ask for (absent attribute = ORT_DEFAULT_LOCALE). */
  locales: string[];
  opTypes: string[];
}

const utf8 = new TextDecoder();
const CLASS_ATTRS = ["classlabels_strings", "classlabels_int64s", "classlabels_ints"] as const;

export function parseOnnx(bytes: Uint8Array, path: string): OnnxModel {
  let model: OnnxModel;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new UserError(`${path} is not an ONNX model (${(err as Error).message.split("\n")[0]})`, {
      hint: "export the model with skl2onnx or torch.onnx.export (a pickle/joblib/safetensors file is not ONNX)",
    });
  }
  if (!model.graph || model.graph.node.length === 0 || model.graph.output.length === 0) {
    throw new UserError(`${path} is not an ONNX model (no graph with nodes and outputs)`, {
      hint: "export the model with skl2onnx or torch.onnx.export",
    });
  }
  return model;
}

export function inspectGraph(model: OnnxModel): GraphInfo {
  const graph = model.graph!;
  const outputs = new Set(graph.output.map((o) => o.name));
  let classes: GraphClasses | undefined;
  // The classifier node's own labels first (they define the probability columns), ZipMap's last.
  const ordered = [...graph.node].sort(
    (a, b) => Number(a.op_type === "ZipMap") - Number(b.op_type === "ZipMap"),
  );
  for (const node of ordered) {
    for (const name of CLASS_ATTRS) {
      const a = node.attribute.find((x) => x.name === name);
      if (!a) continue;
      const labels =
        name === "classlabels_strings"
          ? (a.strings ?? []).map((s) => utf8.decode(s))
          : (a.ints ?? []).map((v) => String(toNumber(v)));
      if (labels.length === 0) continue;
      classes ??= {
        labels,
        kind: name === "classlabels_strings" ? "string" : "int64",
        source: `${node.op_type} ${name}`,
      };
    }
  }
  const zip = graph.node.find((n) => n.op_type === "ZipMap" && outputs.has(n.output[0] ?? ""));
  const locales = graph.node
    .filter((n) => n.op_type === "StringNormalizer")
    .map((n) => {
      const a = n.attribute.find((x) => x.name === "locale");
      return a?.s && a.s.length > 0 ? utf8.decode(a.s) : ORT_DEFAULT_LOCALE;
    });
  return {
    classes,
    zipMap: zip ? { output: zip.output[0]!, input: zip.input[0]! } : undefined,
    locales: [...new Set(locales)],
    opTypes: [...new Set(graph.node.map((n) => (n.domain ? `${n.domain}:${n.op_type}` : n.op_type)))],
  };
}

/** Element type and shape of a graph value, from outputs, inputs or value_info. */
export function valueInfo(graph: OnnxGraph, name: string): OnnxValueInfo | undefined {
  return [...graph.output, ...graph.input, ...graph.value_info].find((v) => v.name === name);
}

export function dtypeOf(v: OnnxValueInfo | undefined): string | undefined {
  const t = v?.type?.tensor_type?.elem_type;
  return t === undefined ? undefined : (ELEM_TYPE[t] ?? `type ${t}`);
}

function tensorOutput(name: string, elemType: number, dims: Array<number | string>): OnnxValueInfo {
  return makeMessage<OnnxValueInfo>("ValueInfoProto", {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) },
      },
    },
  });
}

function freshName(graph: OnnxGraph, base: string): string {
  const used = new Set<string>();
  for (const n of graph.node) for (const o of [...n.output, ...n.input]) used.add(o);
  for (const v of [...graph.input, ...graph.output, ...graph.value_info]) used.add(v.name);
  if (!used.has(base)) return base;
  for (let i = 1; ; i++) if (!used.has(`${base}_${i}`)) return `${base}_${i}`;
}

export interface RewriteOptions {
  /** Output holding the class scores (after ZipMap removal); required for addSoftmax. */
  scoresOutput?: string;
  addSoftmax?: boolean;
  classCount: number;
}

export interface Rewrite {
  bytes: Uint8Array;
  /** What changed, one line each (recorded in model.json `origin.transforms`). */
  transforms: string[];
  /** Output with probabilities [N, C] in the rewritten graph. */
  probabilitiesOutput: string | undefined;
}

/**
 * Returns the graph modelship serves. `bytes` are the input bytes when nothing had to change.
 * Decodes a fresh copy, so the caller's model is not mutated.
 */
export function rewriteForServing(original: Uint8Array, opts: RewriteOptions): Rewrite {
  const model = decodeModel(original);
  const graph = model.graph!;
  const transforms: string[] = [];
  let probs = opts.scoresOutput;
  const info = inspectGraph(model);

  if (info.zipMap) {
    const { output, input } = info.zipMap;
    graph.node = graph.node.filter((n) => !(n.op_type === "ZipMap" && n.output[0] === output));
    const at = graph.output.findIndex((o) => o.name === output);
    const dtype = valueInfo(graph, input)?.type?.tensor_type?.elem_type ?? 1;
    graph.output.splice(at, 1, tensorOutput(input, dtype, ["N", opts.classCount]));
    transforms.push(`removed ZipMap output '${output}'; probabilities tensor '${input}' is the output`);
    if (probs === undefined || probs === output) probs = input;
  }

  if (opts.addSoftmax) {
    if (!probs) throw new Error("rewriteForServing: addSoftmax needs scoresOutput");
    const logits = probs;
    const out = freshName(graph, "probabilities");
    graph.node.push(
      makeMessage<OnnxNode>("NodeProto", {
        input: [logits],
        output: [out],
        name: freshName(graph, "modelship_softmax"),
        op_type: "Softmax",
        domain: "",
        attribute: [{ name: "axis", type: 2, i: 1 }],
      }),
    );
    const at = graph.output.findIndex((o) => o.name === logits);
    const replacement = tensorOutput(out, 1, ["N", opts.classCount]);
    if (at >= 0) graph.output.splice(at, 1, replacement);
    else graph.output.push(replacement);
    if (!model.opset_import.some((o) => (o.domain ?? "") === "")) {
      model.opset_import.push(makeMessage("OperatorSetIdProto", { domain: "", version: 13 }));
    }
    transforms.push(`added Softmax over logits '${logits}' as output '${out}'`);
    probs = out;
  }

  for (const node of graph.node) {
    if (node.op_type !== "StringNormalizer") continue;
    const current = node.attribute.find((a) => a.name === "locale");
    const was = current?.s && current.s.length > 0 ? utf8.decode(current.s) : undefined;
    if (was === PORTABLE_LOCALE) continue;
    const attr = makeMessage<OnnxAttribute>("AttributeProto", {
      name: "locale",
      type: 3,
      s: new TextEncoder().encode(PORTABLE_LOCALE),
    });
    node.attribute = [...node.attribute.filter((a) => a.name !== "locale"), attr];
    transforms.push(
      `StringNormalizer '${node.name ?? ""}': locale ${was ?? `(unset: ${ORT_DEFAULT_LOCALE})`} → ${PORTABLE_LOCALE}`,
    );
  }

  return {
    bytes: transforms.length === 0 ? original : encodeModel(model),
    transforms,
    probabilitiesOutput: probs,
  };
}

/**
 * The original graph with one more output (the tensor a ZipMap consumes), so its probabilities can be
 * read for the parity check; nothing else changes (the ZipMap stays).
 */
export function exposeOutput(original: Uint8Array, name: string, classCount: number): Uint8Array {
  const model = decodeModel(original);
  const graph = model.graph!;
  if (graph.output.some((o) => o.name === name)) return original;
  const dtype = valueInfo(graph, name)?.type?.tensor_type?.elem_type ?? 1;
  graph.output.push(tensorOutput(name, dtype, ["N", classCount]));
  return encodeModel(model);
}

/** Rewrites the class labels of the classifier node(s): tests make a "wrong" (label-swapped) model with it. */
export function withClassLabels(original: Uint8Array, labels: readonly string[]): Uint8Array {
  const model = decodeModel(original);
  const enc = new TextEncoder();
  for (const node of model.graph!.node) {
    for (const a of node.attribute) {
      if (a.name === "classlabels_strings") a.strings = labels.map((l) => enc.encode(l));
      if (a.name === "classlabels_int64s" || a.name === "classlabels_ints") a.ints = labels.map(Number);
    }
  }
  return encodeModel(model);
}

/**
 * skl2onnx's stand-in for scikit-learn's default `token_pattern` `(?u)\b\w\w+\b`: ASCII only, and with
 * the Tokenizer's `mincharnum` 1 it keeps one-character tokens ("i", "a", the "t" of "don't") that
 * scikit-learn drops, so the graph forms bigrams scikit-learn never saw and misses ones it learned.
 */
export const SKL2ONNX_DEFAULT_TOKENEXP = "[a-zA-Z0-9_]+";
/**
 * RE2 for `(?u)\b\w\w+\b`: maximal runs of at least two letters, digits or underscores. Python's `\w` is
 * `[\p{L}\p{N}_]` on every code point Python's Unicode tables assign (test/package.test.ts runs
 * onnxruntime's RE2 on each; RE2 only also knows letters of newer Unicode versions).
 */
export const SKLEARN_TOKENEXP = "[\\p{L}\\p{N}_]{2,}";

export interface Correction {
  bytes: Uint8Array;
  /** "what changed — why", one line each (recorded in model.json `origin.corrections.transforms`). */
  transforms: string[];
}

/**
 * Corrections that make an skl2onnx TfidfVectorizer graph compute what the scikit-learn pipeline
 * computes (unlike rewriteForServing, these change outputs; src/package/package.ts counts by how much):
 * - the Tokenizer's `tokenexp` skl2onnx writes for the default token_pattern → SKLEARN_TOKENEXP;
 * - a StringNormalizer's `stopwords` (skl2onnx copies TfidfVectorizer.stop_words_, the n-grams that
 *   min_df/max_df pruned, which scikit-learn keeps for introspection and never applies) are dropped:
 *   onnxruntime removes whole input texts equal to one, so a batch came back with fewer rows.
 * Only for graphs skl2onnx produced, and only the exact attributes it writes; anything else is untouched.
 */
export function alignWithScikitLearn(bytes: Uint8Array): Correction {
  const model = decodeModel(bytes);
  if (model.producer_name !== "skl2onnx") return { bytes, transforms: [] };
  const graph = model.graph!;
  const transforms: string[] = [];
  const consumers = (value: string) => graph.node.filter((n) => n.input.includes(value));
  // The Tokenizer's tokens reach a TfIdfVectorizer (skl2onnx puts a Flatten between them).
  const feedsTfIdf = (node: OnnxNode): boolean =>
    node.output.some((o) =>
      consumers(o).some(
        (c) =>
          c.op_type === "TfIdfVectorizer" ||
          (c.op_type === "Flatten" &&
            c.output.some((f) => consumers(f).some((d) => d.op_type === "TfIdfVectorizer"))),
      ),
    );
  const str = (node: OnnxNode, name: string) => {
    const a = node.attribute.find((x) => x.name === name);
    return a?.s ? utf8.decode(a.s) : undefined;
  };
  const int = (node: OnnxNode, name: string) => toNumber(node.attribute.find((x) => x.name === name)?.i);

  const tokenizers = graph.node.filter((n) => n.op_type === "Tokenizer" && n.domain === "com.microsoft");
  for (const node of tokenizers) {
    if (str(node, "tokenexp") !== SKL2ONNX_DEFAULT_TOKENEXP || (int(node, "mincharnum") ?? 1) !== 1) continue;
    if (node.attribute.some((a) => a.name === "separators") || !feedsTfIdf(node)) continue;
    const attr = node.attribute.find((a) => a.name === "tokenexp")!;
    attr.s = new TextEncoder().encode(SKLEARN_TOKENEXP);
    transforms.push(
      `Tokenizer '${node.name ?? ""}': tokenexp ${SKL2ONNX_DEFAULT_TOKENEXP} → ${SKLEARN_TOKENEXP} — scikit-learn's default token_pattern (?u)\\b\\w\\w+\\b; skl2onnx's stand-in is ASCII-only and keeps one-character tokens`,
    );
  }
  for (const node of graph.node) {
    if (node.op_type !== "StringNormalizer") continue;
    const stop = node.attribute.find((a) => a.name === "stopwords");
    const count = stop?.strings?.length ?? 0;
    if (count === 0) continue;
    if (!node.output.some((o) => consumers(o).some((c) => tokenizers.includes(c)))) continue;
    node.attribute = node.attribute.filter((a) => a !== stop);
    transforms.push(
      `StringNormalizer '${node.name ?? ""}': dropped ${count} stopwords — TfidfVectorizer.stop_words_, which scikit-learn never applies; onnxruntime removes whole input texts equal to one, so a batch lost rows`,
    );
  }
  return { bytes: transforms.length === 0 ? bytes : encodeModel(model), transforms };
}
