import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import { MODEL_FILE, type ModelCard } from "../src/contracts/card.js";
import { quantile } from "../src/onnx/runtime.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { attr, GraphBuilder } from "../training/onnx/builder.js";
import { trainedBundle } from "./support/bundle.js";

let modelBytes: Uint8Array;
let card: ModelCard;

beforeAll(async () => {
  const dir = await trainedBundle();
  card = (await readBundle(dir)).card;
  modelBytes = await readFile(join(dir, MODEL_FILE));
});

/** Binary float64-input LinearClassifier with int labels, probabilities output "probs". */
function float64Model(opts: { shapes?: boolean } = {}): Uint8Array {
  const g = new GraphBuilder("f64");
  g.input("X", { tensor: "double", shape: ["N", 2] });
  const [label, probs] = g.node(
    "LinearClassifier",
    ["X"],
    ["label", "probs"],
    {
      classlabels_ints: [0, 1],
      coefficients: attr.floats([1, -1, -1, 1]),
      intercepts: attr.floats([0, 0]),
      multi_class: 1,
      post_transform: "SOFTMAX",
    },
    { domain: "ai.onnx.ml" },
  );
  const shapes = opts.shapes ?? true;
  g.output(label!, shapes ? { tensor: "int64", shape: ["N"] } : { tensor: "int64" });
  g.output(probs!, shapes ? { tensor: "float", shape: ["N", 2] } : { tensor: "float" });
  return g.toModel({ opsets: { "": 17, "ai.onnx.ml": 3 } });
}

describe("ClassifierSession", () => {
  it("reads the IO signature of the exported text model and agrees with model.json", async () => {
    const s = await ClassifierSession.open(modelBytes, { labels: card.io.labels });
    try {
      expect(s.inputKind).toBe("text");
      expect(s.input.name).toBe(card.io.inputs[0]!.name);
      expect(s.probabilitiesOutput).toBe(card.io.probabilitiesOutput);
      expect(s.labelOutput).toBe(card.io.labelOutput);
      expect(s.classCount).toBe(2);
      expect(s.tensorSpecs("inputs")).toEqual([
        expect.objectContaining({ name: s.input.name, dtype: "string" }),
      ]);
      expect(s.loadMs).toBeGreaterThan(0);
    } finally {
      await s.release();
    }
  });

  it("runs a batch of raw texts: probability rows sum to 1, labels follow argmax, graph labels agree", async () => {
    const s = await ClassifierSession.open(modelBytes, { labels: card.io.labels });
    try {
      const texts = [
        "lost my luggage again, never flying with you",
        "thanks for the upgrade, amazing crew!",
        "",
      ];
      const p = await s.predict(texts);
      expect(p.probabilities).toHaveLength(3);
      for (const row of p.probabilities) {
        expect(row).toBeInstanceOf(Float32Array);
        expect(row[0]! + row[1]!).toBeCloseTo(1, 5);
      }
      expect(p.labels.slice(0, 2)).toEqual(["negative", "positive"]);
      const raw = await s.runRaw(texts);
      expect(raw.graphLabels).toEqual(p.labels);
      expect(await s.predict([])).toEqual({ probabilities: [], labels: [] });
    } finally {
      await s.release();
    }
  });

  it("feeds float64 feature rows to a double-input model", async () => {
    const s = await ClassifierSession.open(float64Model(), { labels: ["0", "1"] });
    try {
      expect(s.inputKind).toBe("features");
      expect(s.featureCount).toBe(2);
      expect(s.probabilitiesOutput).toBe("probs");
      const p = await s.predict([
        [2, 0],
        [0, 2],
      ]);
      expect(p.labels).toEqual(["0", "1"]);
      // softmax([2,-2]) = [1/(1+e^-4), …]
      expect(p.probabilities[0]![0]).toBeCloseTo(1 / (1 + Math.exp(-4)), 6);
      await expect(s.predict(["text"])).rejects.toThrow(/takes numeric features .* but text was given/);
      await expect(s.predict([[1, 2, 3]])).rejects.toThrow(/expects 2 features per row/);
    } finally {
      await s.release();
    }
  });

  it("finds the probabilities of a graph that declares no output shapes", async () => {
    const s = await ClassifierSession.open(float64Model({ shapes: false }), { labels: ["0", "1"] });
    try {
      expect(s.probabilitiesOutput).toBe("probs");
      expect((await s.predict([[0, 3]])).labels).toEqual(["1"]);
    } finally {
      await s.release();
    }
  });

  it("rejects labels that do not match the class count, text models fed numbers, and garbage bytes", async () => {
    await expect(ClassifierSession.open(modelBytes, { labels: ["a", "b", "c"] })).rejects.toThrow(
      /outputs 2 class probabilities but 3 labels were given/,
    );
    const s = await ClassifierSession.open(modelBytes);
    try {
      await expect(s.predict([[1, 2]])).rejects.toThrow(/takes text .* but numeric feature rows were given/);
    } finally {
      await s.release();
    }
    await expect(ClassifierSession.open(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow(
      /cannot load ONNX model \(in memory\)/,
    );
    await expect(ClassifierSession.open(modelBytes, { probabilitiesOutput: "nope" })).rejects.toThrow(
      /has no output named 'nope'; its outputs: /,
    );
  });

  it("quantile interpolates like numpy", () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95)).toBeCloseTo(9.55, 12);
    expect(quantile([7], 0.95)).toBe(7);
  });
});
