import type { IoSignature } from "../../src/contracts/card.js";
import type { LogisticRegression } from "../logistic.js";
import { NGRAM_JOIN } from "../text.js";
import type { TfidfVectorizer } from "../tfidf.js";
import { GraphBuilder } from "./builder.js";

export const TEXT_INPUT = "text";
export const PROBABILITIES_OUTPUT = "probabilities";
export const LABEL_OUTPUT = "label";

/**
 * Opsets the exported graph needs from onnxruntime: StringConcat is opset 20 (onnxruntime ≥ 1.17),
 * ScatterND's reduction 16, LabelEncoder string → int64 ai.onnx.ml 2, Tokenizer com.microsoft 1.
 */
export const TEXT_MODEL_OPSETS = { "": 20, "ai.onnx.ml": 3, "com.microsoft": 1 };
/** Opset 20 needs IR version 9. */
const IR_VERSION = 9;

/** Locale for StringNormalizer's lower-casing; C.UTF-8 exists on every glibc system (and here). */
export const TOKENIZER_LOCALE = "C.UTF-8";
/** Tokenizer padding: a control character no token pattern of ours matches, so it never forms an n-gram. */
export const PAD = "\u0001";

export function textModelIoSignature(labels: readonly string[]): IoSignature {
  return {
    task: "text-classification",
    inputs: [{ name: TEXT_INPUT, dtype: "string", shape: ["N"] }],
    outputs: [
      { name: PROBABILITIES_OUTPUT, dtype: "float32", shape: ["N", labels.length] },
      { name: LABEL_OUTPUT, dtype: "string", shape: ["N"] },
    ],
    probabilitiesOutput: PROBABILITIES_OUTPUT,
    labelOutput: LABEL_OUTPUT,
    labels: [...labels],
  };
}

/**
 * The whole pipeline as one graph from raw strings, so serving cannot drift from training, and
 * sparse all the way: every tensor is sized by the text (its n-grams), none by the vocabulary.
 *
 *   StringNormalizer (lower-case) → Tokenizer (token regex) → tokens [N, T]
 *   n-grams: StringConcat of shifted token slices → [N, M]           (M = all n-gram positions)
 *   LabelEncoder n-gram → column (unknown → V, a column of zeros)      → ids [N, M]
 *   Unique(row·(V+1) + id) over the known n-grams → one entry per (row, term) with its count (tf)
 *   value = (1 + ln tf) · idf[id]  (Gather)                             → [U]
 *   ScatterND-add per row: Σ value² → [N];  Σ value · coef[id] (Gather) → [N, C]
 *   logits = Σ value·coef / ‖value‖₂ + intercept → Softmax → ArgMax → label strings
 *
 * The L2 norm divides after the dot product (it is linear), so no per-term division is needed.
 */
export function exportTextModel(parts: {
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
  const constant = (name: string, dtype: "int64" | "float", values: number[], dims = [values.length]) =>
    g.initializer(name, { dtype, dims, values });

  const text = opts.lowercase
    ? g.op("StringNormalizer", [TEXT_INPUT], { case_change_action: "LOWER", locale: TOKENIZER_LOCALE })
    : TEXT_INPUT;
  const tokens = g.op(
    "Tokenizer",
    [text],
    { mark: 0, mincharnum: 1, pad_value: PAD, tokenexp: opts.tokenPattern },
    { domain: "com.microsoft" },
  );

  // n-grams of length n at every position: gram_n = (token + " ")[:, :-(n-1)] ⧺ gram_{n-1}[:, 1:].
  // Rows shorter than T are padded with PAD, so their tail n-grams contain PAD and match nothing.
  const axis1 = constant("axis1", "int64", [1]);
  const zero = constant("start0", "int64", [0]);
  const one = constant("start1", "int64", [1]);
  const end = constant("end", "int64", [Number.MAX_SAFE_INTEGER]);
  const joiner = g.initializer("ngram_join", { dtype: "string", dims: [], values: [NGRAM_JOIN] });
  const grams: string[] = [];
  if (minN <= 1) grams.push(tokens);
  if (maxN >= 2) {
    const spaced = g.op("StringConcat", [tokens, joiner]);
    let previous = tokens;
    for (let n = 2; n <= maxN; n++) {
      const head = g.op("Slice", [spaced, zero, constant(`end_minus_${n - 1}`, "int64", [-(n - 1)]), axis1]);
      const tail = g.op("Slice", [previous, one, end, axis1]);
      previous = g.op("StringConcat", [head, tail]);
      if (n >= minN) grams.push(previous);
    }
  }
  const allGrams = grams.length === 1 ? grams[0]! : g.op("Concat", grams, { axis: 1 });

  // n-gram → vocabulary column; anything else → V, whose idf and coefficients are 0.
  const ids = g.op(
    "LabelEncoder",
    [allGrams],
    {
      keys_strings: vectorizer.vocabulary,
      values_int64s: Array.from({ length: V }, (_, j) => j),
      default_int64: V,
    },
    { domain: "ai.onnx.ml" },
  );

  // One key per (row, column): row·(V+1) + column, with the row offsets from an exclusive CumSum
  // over a [N, M] tensor filled with V+1. Unique (input flattened) counts each term's frequency.
  const offsets = g.op(
    "CumSum",
    [
      g.op("ConstantOfShape", [g.op("Shape", [ids])], {
        value: { type: "tensor", value: { dtype: "int64", dims: [1], values: [V + 1] } },
      }),
      constant("axis0", "int64", [0], []),
    ],
    { exclusive: 1 },
  );
  // Only known n-grams go on: padding and out-of-vocabulary n-grams (id V) are often half the
  // positions of a batch, and Unique costs per element.
  const known = g.op("Less", [ids, constant("vocabulary_size", "int64", [V], [])]);
  const keys = g.op("Compress", [g.op("Add", [ids, offsets]), known]);
  const [uniqueKeys, , , counts] = g.node("Unique", [keys], 4, { sorted: 0 });
  // [U, 1] index columns, as ScatterND and GatherND take them.
  const keyColumn = g.op("Unsqueeze", [uniqueKeys!, axis1]);
  const stride = constant("stride", "int64", [V + 1], []);
  const row = g.op("Div", [keyColumn, stride]);
  const column = g.op("Mod", [keyColumn, stride]);

  let tf = g.op("Unsqueeze", [g.op("Cast", [counts!], { to: 1 }), axis1]);
  if (opts.sublinearTf) tf = g.op("Add", [g.op("Log", [tf]), constant("one_f", "float", [1], [])]);
  const idf = Float64Array.from({ length: V + 1 }, (_, j) => (j < V ? vectorizer.idf[j]! : 0));
  const value = g.op("Mul", [
    tf,
    g.op("GatherND", [constant("idf", "float", Array.from(idf), [V + 1, 1]), column]),
  ]);

  const { weights, bias } = model.logitParameters();
  const coef = new Float64Array((V + 1) * C);
  coef.set(weights);
  const shapeN = g.op("Shape", [TEXT_INPUT]);
  const filled = (width: number, fill: number) =>
    g.op(
      "ConstantOfShape",
      [g.op("Concat", [shapeN, constant(`width_${width}`, "int64", [width])], { axis: 0 })],
      {
        value: { type: "tensor", value: { dtype: "float", dims: [1], values: [fill] } },
      },
    );
  // Sums of squares start at a tiny positive value instead of 0, so a text without known n-grams
  // (dot product 0) divides 0 by √1e-30 and keeps its logits at the intercept, as in training.
  const sumSquares = g.op("ScatterND", [filled(1, 1e-30), row, g.op("Mul", [value, value])], {
    reduction: "add",
  });
  const rowCoef = g.op("GatherND", [constant("coef", "float", Array.from(coef), [V + 1, C]), column]);
  const dot = g.op("ScatterND", [filled(C, 0), row, g.op("Mul", [rowCoef, value])], { reduction: "add" });
  const logits = g.op("Add", [
    g.op("Div", [dot, g.op("Sqrt", [sumSquares])]),
    constant("intercept", "float", Array.from(bias)),
  ]);
  g.node("Softmax", [logits], [PROBABILITIES_OUTPUT], { axis: 1 });
  // Label = argmax of the probabilities output (first on ties), as consumers recompute it.
  const best = g.op("ArgMax", [PROBABILITIES_OUTPUT], { axis: 1, keepdims: 0 });
  const labelTable = g.initializer("labels", { dtype: "string", dims: [C], values: [...labels] });
  g.node("Gather", [labelTable, best], [LABEL_OUTPUT], { axis: 0 });

  return g.toModel({
    opsets: TEXT_MODEL_OPSETS,
    irVersion: IR_VERSION,
    producerName: "modelship",
    docString:
      "TF-IDF + logistic regression, sparse (n-gram lookup); input: raw text [N]; outputs: probabilities [N, C], label [N]",
    metadata: {
      labels: JSON.stringify(labels),
      trainer: "modelship-tfidf-logreg",
      graph: "sparse-ngram-lookup",
    },
  });
}
