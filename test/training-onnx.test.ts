import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { loadTextDataset, type TextExample } from "../src/data/dataset.js";
import { textProfileFromOnnx } from "../src/drift/vocabulary.js";
import { accuracy, argmax, confusionMatrix, perClassScores } from "../src/metrics/index.js";
import { modelProtoType } from "../src/onnx/model-proto.js";
import { stratifiedSplit, type TrainedTextModel, trainTextClassifier } from "../training/index.js";
import { GraphBuilder } from "../training/onnx/builder.js";
import { lowerCase } from "../training/text.js";
import { dataPath } from "./support/data.js";

/** Real airline data, binary task (neutral dropped), stratified 80/20 with seed 42, default params. */
let model: TrainedTextModel;
let session: ort.InferenceSession;
let test: TextExample[];
let train: TextExample[];

beforeAll(async () => {
  const ds = loadTextDataset({
    path: dataPath(),
    textColumn: "text",
    labelColumn: "airline_sentiment",
    labels: ["negative", "positive"],
  });
  const split = stratifiedSplit(
    ds.examples.map((e) => e.label),
    0.2,
    42,
  );
  train = split.train.map((i) => ds.examples[i]!);
  test = split.test.map((i) => ds.examples[i]!);
  model = trainTextClassifier(train);
  session = await ort.InferenceSession.create(model.toOnnx({ name: "airline-binary" }));
});

async function runOnnx(texts: string[]): Promise<{ probabilities: number[][]; labels: string[] }> {
  const out = await session.run({ text: new ort.Tensor("string", texts, [texts.length]) });
  const flat = out.probabilities!.data as Float32Array;
  const C = out.probabilities!.dims[1]!;
  expect(out.probabilities!.dims).toEqual([texts.length, model.labels.length]);
  return {
    probabilities: texts.map((_, i) => Array.from(flat.subarray(i * C, (i + 1) * C))),
    labels: [...(out.label!.data as string[])],
  };
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  let d = 0;
  for (let i = 0; i < a.length; i++)
    for (let k = 0; k < a[i]!.length; k++) d = Math.max(d, Math.abs(a[i]![k]! - b[i]![k]!));
  return d;
}

async function expectParity(texts: string[]): Promise<void> {
  const onnx = await runOnnx(texts);
  const ts = model.predictProba(texts);
  expect(maxAbsDiff(onnx.probabilities, ts)).toBeLessThanOrEqual(1e-4);
  expect(onnx.labels).toEqual(ts.map((p) => model.labels[argmax(p)]));
}

describe("binary airline model (default params)", () => {
  it("meets the acceptance bar on the test split", () => {
    expect(train).toHaveLength(9232);
    expect(test).toHaveLength(2309);
    const probs = model.predictProba(test.map((e) => e.text));
    const yTrue = test.map((e) => model.labels.indexOf(e.label));
    const yPred = probs.map((p) => argmax(p));
    const acc = accuracy(yTrue, yPred);
    const scores = perClassScores(confusionMatrix(yTrue, yPred, 2));
    const f1Positive = scores[model.labels.indexOf("positive")]!.f1;
    console.log(
      `binary: accuracy ${acc.toFixed(4)}, F1(positive) ${f1Positive.toFixed(4)}, vocabulary ${model.vocabularySize}, ` +
        `L-BFGS iterations ${model.optimizer.iterations}`,
    );
    expect(model.optimizer.converged).toBe(true);
    expect(acc).toBeGreaterThanOrEqual(0.915);
    expect(f1Positive).toBeGreaterThanOrEqual(0.79);
  });

  it("ONNX probabilities equal predictProba on every test row (≤ 1e-4)", async () => {
    const texts = test.map((e) => e.text);
    const onnx = await runOnnx(texts);
    const ts = model.predictProba(texts);
    const diff = maxAbsDiff(onnx.probabilities, ts);
    console.log(`parity on ${texts.length} test rows: max |Δp| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(onnx.labels).toEqual(ts.map((p) => model.labels[argmax(p)]));
  });

  it("declares the IO signature it has", () => {
    const sig = model.ioSignature();
    expect(session.inputNames).toEqual(sig.inputs.map((i) => i.name));
    expect(session.outputNames).toEqual(sig.outputs.map((o) => o.name));
    expect(sig.labels).toEqual(["negative", "positive"]);
    expect(sig.outputs[0]).toEqual({ name: "probabilities", dtype: "float32", shape: ["N", 2] });
  });

  it("handles empty, token-less, accented, apostrophe and very long texts", async () => {
    const edge = [
      "",
      "   ",
      "!!! ?? 🙂✈️ …",
      "ÇA NE VA PAS — très déçu, vol annulé",
      "Don't cancel my flight, it's NOT ok",
      "dont cancel my flight its not ok",
      "GREAT CREW",
      // Repeated terms on both sides of the pairwise tf limit (128 n-gram positions: 119 and 139).
      "thanks for the great flight ".repeat(12),
      "thanks for the great flight ".repeat(14),
      `${"thanks for the great flight ".repeat(4000)}`,
      "x".repeat(100_000),
      "İSTANBUL ΣΊΣΥΦΟΣ \u212Aelvin",
    ];
    await expectParity(edge);
    // One at a time too: a batch takes one tf branch (by its longest row), a single text its own.
    for (const text of edge) await expectParity([text]);
    const [empty] = (await runOnnx([""])).probabilities;
    // No known n-gram: the model falls back to its intercept, identical for every such text.
    expect((await runOnnx(["!!! 🙂"])).probabilities[0]).toEqual(empty);
    // An all-token-less batch still has shape [N, C].
    await expectParity(["", "…", "🙂"]);
  });

  it("gives the same answer per row in batches of 1, mixed lengths and 64", async () => {
    const batch = Array.from({ length: 64 }, (_, i) =>
      i % 5 === 0 ? "" : test[i]!.text.repeat(1 + (i % 3)),
    );
    await expectParity(batch);
    await expectParity([test[0]!.text]);
    const together = (await runOnnx(batch)).probabilities;
    for (const i of [0, 1, 17, 63]) {
      const alone = (await runOnnx([batch[i]!])).probabilities[0]!;
      expect(maxAbsDiff([alone], [together[i]!])).toBeLessThan(1e-6);
    }
  });
});

interface GraphNode {
  op_type: string;
  input: string[];
}
interface GraphTensor {
  name: string;
  dims: (number | { toNumber(): number })[];
}
function graphOf(bytes: Uint8Array): { node: GraphNode[]; initializer: GraphTensor[] } {
  const m = modelProtoType().decode(bytes) as unknown as {
    graph: { node: GraphNode[]; initializer: GraphTensor[] };
  };
  return m.graph;
}

/**
 * Ways a graph's per-row cost grows with the vocabulary: an op that emits a dense [N, vocabulary]
 * tensor, or a vocabulary-sized table used other than as rows fetched by Gather (a MatMul or Gemm
 * over the coefficients). The sparse graph's MatMuls multiply per-row [1, M] × [M, C] gathered rows.
 */
function denseVocabularyOps(bytes: Uint8Array, vocabulary: number): string[] {
  const graph = graphOf(bytes);
  const big = new Set(
    graph.initializer
      .filter((t) => t.dims.some((d) => (typeof d === "number" ? d : d.toNumber()) >= vocabulary))
      .map((t) => t.name),
  );
  const found: string[] = [];
  for (const n of graph.node) {
    if (["TfIdfVectorizer", "OneHot", "CategoryMapper"].includes(n.op_type)) found.push(n.op_type);
    n.input.forEach((name, i) => {
      const gathered = (n.op_type === "Gather" || n.op_type === "GatherND") && i === 0;
      if (big.has(name) && !gathered) found.push(`${n.op_type}(${name})`);
    });
  }
  return found;
}

describe("graph layout", () => {
  it("has no dense [N, vocabulary] op: n-grams are looked up and only their rows gathered", () => {
    const bytes = model.toOnnx();
    expect(denseVocabularyOps(bytes, model.vocabularySize)).toEqual([]);
    const ops = graphOf(bytes).node.map((n) => n.op_type);
    expect(ops).toEqual(expect.arrayContaining(["LabelEncoder", "StringConcat", "If", "Gather", "MatMul"]));
    // The check can fail: the dense graph of earlier bundles trips it.
    const dense = denseVocabularyOps(model.toOnnx({ graph: "dense" }), model.vocabularySize);
    expect(dense).toContain("TfIdfVectorizer");
    expect(dense.some((op) => op.startsWith("MatMul("))).toBe(true);
  });

  it("the dense graph of earlier bundles still agrees with the trainer on every test row", async () => {
    const dense = await ort.InferenceSession.create(model.toOnnx({ graph: "dense" }));
    const texts = test.map((e) => e.text);
    const out = await dense.run({ text: new ort.Tensor("string", texts, [texts.length]) });
    const flat = out.probabilities!.data as Float32Array;
    const onnx = texts.map((_, i) => Array.from(flat.subarray(i * 2, i * 2 + 2)));
    expect(maxAbsDiff(onnx, model.predictProba(texts))).toBeLessThanOrEqual(1e-4);
  });

  it("drift reads the same text profile (token rule, lower-casing, unigrams) from both layouts", () => {
    const sparse = textProfileFromOnnx(model.toOnnx())!;
    const dense = textProfileFromOnnx(model.toOnnx({ graph: "dense" }))!;
    expect(sparse.vocabulary.size).toBeGreaterThan(1000);
    expect([...sparse.vocabulary].sort()).toEqual([...dense.vocabulary].sort());
    const sample = "GREAT flight, but the wi-fi was zzzqqq";
    expect(sparse.count(sample)).toEqual(dense.count(sample));
    expect(sparse.count(sample).oov).toBeGreaterThan(0);
  });
});

describe("three-class airline model", () => {
  it("trains and reports sane metrics with parity", async () => {
    const ds = loadTextDataset({ path: dataPath(), textColumn: "text", labelColumn: "airline_sentiment" });
    const split = stratifiedSplit(
      ds.examples.map((e) => e.label),
      0.2,
      42,
    );
    const three = trainTextClassifier(split.train.map((i) => ds.examples[i]!));
    expect(three.labels).toEqual(["negative", "neutral", "positive"]);
    const testRows = split.test.map((i) => ds.examples[i]!);
    const probs = three.predictProba(testRows.map((e) => e.text));
    const yTrue = testRows.map((e) => three.labels.indexOf(e.label));
    const yPred = probs.map((p) => argmax(p));
    const acc = accuracy(yTrue, yPred);
    const f1 = perClassScores(confusionMatrix(yTrue, yPred, 3)).map((s) => s.f1);
    console.log(`three-class: accuracy ${acc.toFixed(4)}, F1 ${f1.map((f) => f.toFixed(3)).join(" / ")}`);
    expect(acc).toBeGreaterThan(0.78);
    for (const f of f1) expect(f).toBeGreaterThan(0.6);

    const s = await ort.InferenceSession.create(three.toOnnx());
    const texts = testRows.map((e) => e.text);
    const out = await s.run({ text: new ort.Tensor("string", texts, [texts.length]) });
    const flat = out.probabilities!.data as Float32Array;
    const onnx = texts.map((_, i) => Array.from(flat.subarray(i * 3, i * 3 + 3)));
    expect(maxAbsDiff(onnx, three.predictProba(texts))).toBeLessThanOrEqual(1e-4);
  });
});

describe("lower-casing parity", () => {
  it("agrees with StringNormalizer wherever it can change a token", async () => {
    const g = new GraphBuilder("lower");
    g.input("x", { tensor: "string", shape: ["N"] });
    g.output("y", { tensor: "string", shape: ["N"] });
    g.node("StringNormalizer", ["x"], ["y"], { case_change_action: "LOWER", locale: "C.UTF-8" });
    const s = await ort.InferenceSession.create(g.toModel({ opsets: { "": 17 } }));
    const chars: string[] = [];
    for (let c = 1; c < 0x30000; c++) if (c < 0xd800 || c >= 0xe000) chars.push(String.fromCodePoint(c));
    const out = (await s.run({ x: new ort.Tensor("string", chars, [chars.length]) })).y!.data as string[];
    const tokenChar = /[a-z0-9']/;
    const mismatches = chars.filter((ch, i) => {
      const ours = lowerCase(ch);
      return ours !== out[i] && (tokenChar.test(ours) || tokenChar.test(out[i]!));
    });
    expect(mismatches).toEqual([]);
    // Same for every ASCII and Latin-1 letter exactly.
    for (let i = 0; i < 0x250; i++) expect(lowerCase(chars[i]!)).toBe(out[i]);
  });
});
