import type { LogisticRegression } from "../logistic.js";
import { NGRAM_JOIN } from "../text.js";
import type { TfidfVectorizer } from "../tfidf.js";
import { GraphBuilder } from "./builder.js";
import { LABEL_OUTPUT, PAD, PROBABILITIES_OUTPUT, TEXT_INPUT, TOKENIZER_LOCALE } from "./text-model.js";

/** Opsets of the dense graph. */
const DENSE_OPSETS = { "": 17, "ai.onnx.ml": 3, "com.microsoft": 1 };

/**
 * The graph modelship wrote before the sparse one (training/onnx/text-model.ts). Bundles trained
 * earlier carry it and keep serving; tests build such bundles with it, and `bench:model` compares
 * its cost with the sparse graph's. Not used by \`modelship train\`.
 *
 * The whole pipeline as one graph from raw strings:
 * StringNormalizer (lower-case) → Tokenizer (token regex) → TfIdfVectorizer (n-gram counts) →
 * 1 + ln(tf) → × idf → L2 normalise → MatMul + Add → Softmax → ArgMax → label strings.
 */
export function exportDenseTextModel(parts: {
  vectorizer: TfidfVectorizer;
  model: LogisticRegression;
  labels: readonly string[];
  name: string;
}): Uint8Array {
  const { vectorizer, model, labels } = parts;
  const opts = vectorizer.options;
  const [minN, maxN] = opts.ngramRange;
  const V = vectorizer.vocabulary.length;
  const C = labels.length;
  const g = new GraphBuilder(parts.name);
  g.input(TEXT_INPUT, { tensor: "string", shape: ["N"] });
  g.output(PROBABILITIES_OUTPUT, { tensor: "float", shape: ["N", C] });
  g.output(LABEL_OUTPUT, { tensor: "string", shape: ["N"] });

  const text = opts.lowercase
    ? g.op("StringNormalizer", [TEXT_INPUT], { case_change_action: "LOWER", locale: TOKENIZER_LOCALE })
    : TEXT_INPUT;
  const tokens = g.op(
    "Tokenizer",
    [text],
    { mark: 0, mincharnum: 1, pad_value: PAD, tokenexp: opts.tokenPattern },
    { domain: "com.microsoft" },
  );

  // Pool: all 1-grams, then all 2-grams, … (each n-gram flattened to its tokens); ngram_counts holds
  // the pool offset where each length starts; ngram_indexes maps each pooled n-gram to its column.
  const byLength: { tokens: string[]; column: number }[][] = Array.from({ length: maxN }, () => []);
  vectorizer.vocabulary.forEach((term, column) => {
    const parts = term.split(NGRAM_JOIN);
    byLength[parts.length - 1]!.push({ tokens: parts, column });
  });
  const pool: string[] = [];
  const ngramCounts: number[] = [];
  const ngramIndexes: number[] = [];
  for (const group of byLength) {
    ngramCounts.push(pool.length);
    for (const { tokens: t, column } of group) {
      pool.push(...t);
      ngramIndexes.push(column);
    }
  }
  const counts = g.op("TfIdfVectorizer", [tokens], {
    min_gram_length: minN,
    max_gram_length: maxN,
    max_skip_count: 0,
    mode: "TF",
    pool_strings: pool,
    ngram_counts: ngramCounts,
    ngram_indexes: ngramIndexes,
  });

  // Sublinear tf without infinities: sign(tf) + ln(max(tf, 1)) is 0 for tf = 0 and 1 + ln(tf) otherwise.
  let tf = counts;
  if (opts.sublinearTf) {
    const one = g.initializer("one", { dtype: "float", dims: [], values: [1] });
    tf = g.op("Add", [g.op("Sign", [counts]), g.op("Log", [g.op("Max", [counts, one])])]);
  }
  const idf = g.initializer("idf", { dtype: "float", dims: [V], values: vectorizer.idf });
  const weighted = g.op("Mul", [tf, idf]);
  const sumSquares = g.op("ReduceSumSquare", [weighted], { axes: [1], keepdims: 1 });
  // A text without known n-grams has norm 0; dividing by a tiny floor keeps it at zero (as in training).
  const tiny = g.initializer("tiny", { dtype: "float", dims: [], values: [1e-30] });
  const normalized = g.op("Div", [weighted, g.op("Max", [g.op("Sqrt", [sumSquares]), tiny])]);

  const { weights, bias } = model.logitParameters();
  const W = g.initializer("coef", { dtype: "float", dims: [V, C], values: weights });
  const b = g.initializer("intercept", { dtype: "float", dims: [C], values: bias });
  const logits = g.op("Add", [g.op("MatMul", [normalized, W]), b]);
  g.node("Softmax", [logits], [PROBABILITIES_OUTPUT], { axis: 1 });
  // Label = argmax of the probabilities output (first on ties), as consumers recompute it.
  const best = g.op("ArgMax", [PROBABILITIES_OUTPUT], { axis: 1, keepdims: 0 });
  const labelTable = g.initializer("labels", { dtype: "string", dims: [C], values: [...labels] });
  g.node("Gather", [labelTable, best], [LABEL_OUTPUT], { axis: 0 });

  return g.toModel({
    opsets: DENSE_OPSETS,
    producerName: "modelship",
    docString: "TF-IDF + logistic regression; input: raw text [N]; outputs: probabilities [N, C], label [N]",
    metadata: { labels: JSON.stringify(labels), trainer: "modelship-tfidf-logreg" },
  });
}
