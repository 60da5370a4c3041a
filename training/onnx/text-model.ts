import type { IoSignature } from "../../src/contracts/card.js";
import type { LogisticRegression } from "../logistic.js";
import { NGRAM_JOIN } from "../text.js";
import type { TfidfVectorizer } from "../tfidf.js";
import { type Attribute, attr, GraphBuilder } from "./builder.js";

export const TEXT_INPUT = "text";
export const PROBABILITIES_OUTPUT = "probabilities";
export const LABEL_OUTPUT = "label";

/**
 * Opsets the exported graph needs from onnxruntime: StringConcat is opset 20 (onnxruntime ≥ 1.17),
 * Shape's start/end 15, LabelEncoder string → int64 ai.onnx.ml 2, Tokenizer com.microsoft 1.
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
 *   tf per position: c = how often the position's term occurs in its row → [N, 1, M]
 *     (pairwise Equal for rows of ≤ 128 positions, Unique beyond; an If picks)
 *   per occurrence w = s(c)/c, w2 = s(c)²/c, s(c) = 1 + ln c (sublinear tf) or c
 *   one folded table per term: idf·coef [V+1, C] and idf² [V+1, 1], rows Gathered by id
 *   per row (MatMul [N, 1, M] × [N, M, ·]): dot = Σ w·idf·coef, ‖tf-idf‖² = Σ w2·idf²
 *   logits = dot / ‖tf-idf‖₂ + intercept → Softmax → ArgMax → label strings
 *
 * A term of tf c occurs c times, so summing s(c)/c per occurrence gives s(c) per term without a
 * per-term reduction (no Unique/ScatterND for tweets: per-node overhead decides a one-text run).
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

  const count = termCounts(g, ids, V, axis1);
  // Per occurrence: w = s(c)/c weights the idf-scaled coefficients; w·s(c) = s(c)²/c the squared idf.
  let w: string;
  let w2: string;
  if (opts.sublinearTf) {
    const s = g.op("Add", [g.op("Log", [count]), constant("one_f", "float", [1], [])]);
    w = g.op("Div", [s, count]);
    w2 = g.op("Mul", [w, s]);
  } else {
    w = g.op("ConstantOfShape", [g.op("Shape", [count])], {
      value: { type: "tensor", value: { dtype: "float", dims: [1], values: [1] } },
    });
    w2 = count;
  }

  // idf folded into the classifier: one table row per term, idf·coef (row V, unknown: zeros).
  const { weights, bias } = model.logitParameters();
  const table = new Float64Array((V + 1) * C);
  const idfSquared = new Float64Array(V + 1);
  for (let j = 0; j < V; j++) {
    const idf = vectorizer.idf[j]!;
    idfSquared[j] = idf * idf;
    for (let c = 0; c < C; c++) table[j * C + c] = idf * weights[j * C + c]!;
  }
  // [N, 1, M] × [N, M, C] → [N, 1, C]: per row Σ w·idf·coef, and Σ w2·idf² = ‖tf-idf‖².
  const dot = g.op("MatMul", [
    w,
    g.op("Gather", [constant("idf_coef", "float", Array.from(table), [V + 1, C]), ids]),
  ]);
  const sumSquares = g.op("MatMul", [
    w2,
    g.op("Gather", [constant("idf_squared", "float", Array.from(idfSquared), [V + 1, 1]), ids]),
  ]);
  // The L2 norm divides after the dot product (it is linear); 1e-30 keeps a text without known
  // n-grams (0 / 0) at the intercept, as in training.
  const norm = g.op("Sqrt", [g.op("Add", [sumSquares, constant("tiny", "float", [1e-30], [])])]);
  const logits = g.op("Add", [
    g.op("Squeeze", [g.op("Div", [dot, norm]), axis1]),
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
      graph: "sparse-ngram-pairwise",
    },
  });
}

/** Rows with at most this many n-gram positions count term frequencies pairwise ([N, M, M]). */
export const PAIRWISE_MAX_POSITIONS = 128;

type Op = (opType: string, inputs: string[], attributes?: Record<string, Attribute>) => string;

/** A branch subgraph for If: nodes named `${name}_…` (never clashing with the outer graph), one output. */
function branch(name: string, build: (op: Op, sub: GraphBuilder) => string): GraphBuilder {
  const sub = new GraphBuilder(name);
  let k = 0;
  const op: Op = (t, ins, a = {}) =>
    sub.node(t, ins, [`${name}_${k}`], a, { name: `${name}_${t}_${k++}` })[0]!;
  // The last node's output is the branch output (no Identity: every node costs in a one-text run).
  sub.output(build(op, sub), { tensor: "float" });
  return sub;
}

/**
 * How often each position's term occurs in its row: float [N, 1, M]. Rows of at most 128 n-gram
 * positions (every tweet) compare all positions pairwise ([N, M, M] booleans, summed; the matrix is
 * symmetric, so the sums come out as [N, 1, M]) — five cheap nodes, no Unique. Longer rows take a
 * linear path so memory stays O(N·M): Unique over row·(V+1) + id, and each position's count
 * gathered through Unique's inverse indices. An If node on M picks the branch.
 */
function termCounts(g: GraphBuilder, ids: string, V: number, axis1: string): string {
  const axis2 = g.initializer("axis2", { dtype: "int64", dims: [1], values: [2] });
  const axis0 = g.initializer("axis0", { dtype: "int64", dims: [], values: [0] });
  const pairwise = branch("pairwise", (op) => {
    const equal = op("Equal", [op("Unsqueeze", [ids, axis2]), op("Unsqueeze", [ids, axis1])]);
    return op("ReduceSum", [op("Cast", [equal], { to: 1 }), axis1], { keepdims: 1 });
  });
  const linear = branch("linear", (op, sub) => {
    const shape = op("Shape", [ids]);
    // One key per (row, term): row·(V+1) + id, the row offsets from an exclusive CumSum down a
    // [N, M] tensor filled with V+1.
    const stride = op("ConstantOfShape", [shape], {
      value: { type: "tensor", value: { dtype: "int64", dims: [1], values: [V + 1] } },
    });
    const keys = op("Add", [ids, op("CumSum", [stride, axis0], { exclusive: 1 })]);
    const [, , inverse, counts] = sub.node(
      "Unique",
      [keys],
      ["linear_unique", "linear_first", "linear_inverse", "linear_counts"],
      { sorted: 0 },
      { name: "linear_Unique" },
    );
    const perPosition = op("Reshape", [op("Gather", [counts!, inverse!]), shape]);
    return op("Cast", [op("Unsqueeze", [perPosition, axis1])], { to: 1 });
  });
  const positions = g.op("Shape", [ids], { start: 1, end: 2 });
  const limit = g.initializer("pairwise_limit", {
    dtype: "int64",
    dims: [1],
    values: [PAIRWISE_MAX_POSITIONS + 1],
  });
  return g.node("If", [g.op("Less", [positions, limit])], ["term_count"], {
    then_branch: attr.graph(pairwise),
    else_branch: attr.graph(linear),
  })[0]!;
}
