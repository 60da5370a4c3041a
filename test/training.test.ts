import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { UserError } from "../src/util/errors.js";
import {
  crossValidate,
  parseTextTrainerParams,
  stratifiedKFold,
  stratifiedSplit,
  trainTextClassifier,
} from "../training/index.js";
import { LogisticRegression } from "../training/logistic.js";
import { attr, GraphBuilder } from "../training/onnx/builder.js";
import { lowerCase } from "../training/text.js";
import { type SparseMatrix, TfidfVectorizer } from "../training/tfidf.js";

const tfidfDefaults = {
  lowercase: true,
  tokenPattern: "[a-z0-9']+",
  ngramRange: [1, 1] as [number, number],
  maxFeatures: 1000,
  minDf: 1,
  maxDf: 1,
  stopWords: false,
  sublinearTf: true,
};

function dense(X: SparseMatrix): number[][] {
  const out = Array.from({ length: X.rows }, () => new Array<number>(X.cols).fill(0));
  for (let i = 0; i < X.rows; i++) {
    for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) out[i]![X.indices[p]!] = X.values[p]!;
  }
  return out;
}

function labelsOf(counts: Record<string, number>): string[] {
  return Object.entries(counts).flatMap(([label, n]) => new Array<string>(n).fill(label));
}

describe("stratifiedSplit", () => {
  const labels = labelsOf({ a: 50, b: 30, c: 7 });

  it("keeps class proportions, covers every row once and is seeded", () => {
    const s = stratifiedSplit(labels, 0.2, 42);
    expect([...s.train, ...s.test].sort((x, y) => x - y)).toEqual(labels.map((_, i) => i));
    const count = (idx: number[], l: string) => idx.filter((i) => labels[i] === l).length;
    expect([count(s.test, "a"), count(s.test, "b"), count(s.test, "c")]).toEqual([10, 6, 1]);
    expect(stratifiedSplit(labels, 0.2, 42)).toEqual(s);
    expect(stratifiedSplit(labels, 0.2, 7).test).not.toEqual(s.test);
  });

  it("rejects a class with one row and a bad test size", () => {
    expect(() => stratifiedSplit(["a", "a", "b"], 0.5, 1)).toThrow(/class "b" has 1 row/);
    expect(() => stratifiedSplit(["a", "b"], 1.5, 1)).toThrow(UserError);
  });
});

describe("stratifiedKFold", () => {
  const labels = labelsOf({ a: 23, b: 11, c: 6 });

  it("puts every row in exactly one test fold with balanced classes", () => {
    const folds = stratifiedKFold(labels, 5, 3);
    expect(folds).toHaveLength(5);
    const seen = folds.flatMap((f) => f.test).sort((x, y) => x - y);
    expect(seen).toEqual(labels.map((_, i) => i));
    for (const f of folds) {
      expect(f.train.length + f.test.length).toBe(labels.length);
      expect(f.train.some((i) => f.test.includes(i))).toBe(false);
      for (const [l, n] of [
        ["a", 23],
        ["b", 11],
        ["c", 6],
      ] as const) {
        const inFold = f.test.filter((i) => labels[i] === l).length;
        expect(Math.abs(inFold - n / 5)).toBeLessThanOrEqual(1);
      }
    }
    expect(stratifiedKFold(labels, 5, 3)).toEqual(folds);
  });

  it("needs k rows per class", () => {
    expect(() => stratifiedKFold(labelsOf({ a: 10, b: 3 }), 5, 1)).toThrow(/class "b" has 3 rows/);
    expect(() => stratifiedKFold(labels, 1, 1)).toThrow(/at least 2 folds/);
  });
});

describe("TfidfVectorizer", () => {
  it("computes smooth idf, sublinear tf and L2 rows like scikit-learn", () => {
    const v = TfidfVectorizer.fit(["A b a", "b c"], tfidfDefaults);
    expect(v.vocabulary).toEqual(["a", "b", "c"]);
    const idfA = Math.log(3 / 2) + 1; // n = 2 documents, df(a) = 1
    expect(Array.from(v.idf)).toEqual([idfA, 1, idfA]);
    const [row0, row1] = dense(v.transform(["A b a", "b c"]));
    const a = (1 + Math.log(2)) * idfA;
    const norm0 = Math.hypot(a, 1);
    expect(row0![0]).toBeCloseTo(a / norm0, 12);
    expect(row0![1]).toBeCloseTo(1 / norm0, 12);
    expect(row0![2]).toBe(0);
    const norm1 = Math.hypot(1, idfA);
    expect(row1).toEqual([0, 1 / norm1, idfA / norm1]);
    // Unknown words only → an all-zero row, not NaN.
    expect(dense(v.transform(["zzz", ""]))).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
  });

  it("builds n-grams and filters by document frequency", () => {
    const texts = ["not good at all", "not good", "good food", "very good food"];
    const v = TfidfVectorizer.fit(texts, { ...tfidfDefaults, ngramRange: [1, 2], minDf: 2, maxDf: 0.9 });
    // "good" occurs in 4/4 documents (> 90%) → dropped; bigrams with df ≥ 2 stay.
    expect(v.vocabulary).toEqual(["food", "good food", "not", "not good"]);
  });

  it("caps the vocabulary at the most frequent n-grams, ties in code-unit order", () => {
    const v = TfidfVectorizer.fit(["b b b a c d", "d a c"], { ...tfidfDefaults, maxFeatures: 3 });
    // totals: b 3, a 2, c 2, d 2 → b, then a and c win the tie against d.
    expect(v.vocabulary).toEqual(["a", "b", "c"]);
  });

  it("drops stop words and every n-gram containing one when asked", () => {
    const texts = ["the flight was late", "the flight was late"];
    const v = TfidfVectorizer.fit(texts, { ...tfidfDefaults, ngramRange: [1, 2], stopWords: true });
    expect(v.vocabulary).toEqual(["flight", "late"]);
  });

  it("keeps apostrophes inside tokens and raw counts without sublinear tf", () => {
    const v = TfidfVectorizer.fit(["don't don't stop"], { ...tfidfDefaults, sublinearTf: false });
    expect(v.vocabulary).toEqual(["don't", "stop"]);
    const [row] = dense(v.transform(["don't don't stop"]));
    expect(row![0]! / row![1]!).toBeCloseTo(2, 12);
  });
});

describe("lowerCase", () => {
  it("maps one code point to one code point like towlower", () => {
    expect(lowerCase("ÉCOLE İstanbul ΣΑΣ KELVIN\u212A")).toBe("école istanbul σασ kelvink");
    expect(lowerCase("ABC def")).toBe("abc def");
  });
});

describe("LogisticRegression", () => {
  // A small random sparse problem; the fitted model must satisfy the optimality condition
  // Σ_i w_i (p_i − y_i) x_i + θ / C = 0 for the weights and Σ_i w_i (p_i − y_i) = 0 for the intercept.
  function problem(classes: number) {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const rows = 300;
    const cols = 12;
    const indptr = new Int32Array(rows + 1);
    const indices: number[] = [];
    const values: number[] = [];
    const y = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      const label = i % classes;
      y[i] = label;
      for (let j = 0; j < cols; j++) {
        if (rnd() < 0.4) {
          indices.push(j);
          values.push(rnd() + (j % classes === label ? 0.5 : 0));
        }
      }
      indptr[i + 1] = indices.length;
    }
    const X: SparseMatrix = {
      rows,
      cols,
      indptr,
      indices: Int32Array.from(indices),
      values: Float64Array.from(values),
    };
    return { X, y };
  }

  for (const classes of [2, 3]) {
    for (const classWeight of ["none", "balanced"] as const) {
      it(`reaches the optimum (${classes} classes, class weight ${classWeight})`, () => {
        const { X, y } = problem(classes);
        const C = 2;
        const model = LogisticRegression.fit(X, y, classes, {
          C,
          classWeight,
          maxIterations: 2000,
          tolerance: 1e-10,
        });
        expect(model.converged).toBe(true);
        const P = model.predictProba(X);
        const counts = new Array<number>(classes).fill(0);
        for (const c of y) counts[c]!++;
        const sw = Array.from(y, (c) => (classWeight === "balanced" ? y.length / (classes * counts[c]!) : 1));
        const K = classes === 2 ? 1 : classes;
        const gradW = new Float64Array(X.cols * K);
        const gradB = new Float64Array(K);
        for (let i = 0; i < X.rows; i++) {
          for (let k = 0; k < K; k++) {
            const cls = classes === 2 ? 1 : k;
            const r = sw[i]! * (P[i]![cls]! - (y[i] === cls ? 1 : 0));
            gradB[k]! += r;
            for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++)
              gradW[X.indices[p]! * K + k]! += r * X.values[p]!;
          }
        }
        for (let j = 0; j < gradW.length; j++) gradW[j]! += model.weights[j]! / C;
        // Gradient of the mean loss at (near) float precision.
        expect(Math.max(...gradW.map(Math.abs), ...gradB.map(Math.abs)) / X.rows).toBeLessThan(1e-7);
        for (const row of P) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      });
    }
  }
});

describe("trainTextClassifier", () => {
  const examples = [
    ...["great flight", "love the crew", "thanks great service", "awesome crew", "love it thanks"].map(
      (text) => ({
        text,
        label: "positive",
      }),
    ),
    ...["flight delayed again", "lost my bag", "worst service", "delayed and lost", "bag lost again"].map(
      (text) => ({
        text,
        label: "negative",
      }),
    ),
  ];

  it("learns, reports progress and is deterministic", () => {
    const phases: string[] = [];
    const a = trainTextClassifier(examples, { minDf: 1 }, (p) => phases.push(p.phase));
    expect(a.labels).toEqual(["negative", "positive"]);
    expect(phases[0]).toBe("vectorize");
    expect(phases).toContain("optimize");
    expect(phases.at(-1)).toBe("done");
    const [pos, neg] = a.predictProba(["great crew", "lost bag"]);
    expect(pos![1]).toBeGreaterThan(0.5);
    expect(neg![0]).toBeGreaterThan(0.5);
    const b = trainTextClassifier(examples, { minDf: 1 });
    expect(b.predictProba(["great crew"])).toEqual(a.predictProba(["great crew"]));
    expect(Buffer.from(b.toOnnx()).equals(Buffer.from(a.toOnnx()))).toBe(true);
    expect(a.ioSignature()).toMatchObject({
      labels: ["negative", "positive"],
      probabilitiesOutput: "probabilities",
    });
  });

  it("exports non-default pipelines with parity (case kept, stop words, trigrams, raw tf, 3 classes)", async () => {
    const three = [
      ...examples,
      ...["The flight was OK", "it was fine", "The flight was on time", "OK I guess"].map((text) => ({
        text,
        label: "neutral",
      })),
    ];
    const variants = [
      { minDf: 1, lowercase: false, sublinearTf: false },
      { minDf: 1, stopWords: true, ngramRange: [1, 3] as [number, number], classWeight: "none" as const },
      { minDf: 1, ngramRange: [2, 2] as [number, number], C: 0.5 },
    ];
    const probe = ["Great crew", "GREAT crew", "the flight was delayed", "lost bag was ok", "", "ok ok ok"];
    for (const params of variants) {
      const model = trainTextClassifier(three, params);
      const session = await ort.InferenceSession.create(model.toOnnx());
      const out = await session.run({ text: new ort.Tensor("string", probe, [probe.length]) });
      const flat = out.probabilities!.data as Float32Array;
      const mine = model.predictProba(probe);
      for (let i = 0; i < probe.length; i++) {
        for (let k = 0; k < 3; k++) expect(Math.abs(flat[i * 3 + k]! - mine[i]![k]!)).toBeLessThan(1e-5);
      }
    }
  });

  it("rejects one class, an empty vocabulary and bad params with a UserError", () => {
    expect(() => trainTextClassifier([{ text: "x", label: "a" }])).toThrow(/at least two classes/);
    expect(() => trainTextClassifier(examples, { minDf: 50 })).toThrow(/no n-gram occurs in at least 50/);
    expect(() => trainTextClassifier(examples, { C: -1 })).toThrow(/trainer params: C:/);
    expect(() => trainTextClassifier(examples, { ngramRange: [3, 1] })).toThrow(/ngramRange/);
    expect(() => trainTextClassifier(examples, { tokenPattern: "[a-z ]+" })).toThrow(/tokenPattern/);
    expect(() => parseTextTrainerParams({ cee: 3 })).toThrow(UserError);
    expect(() => parseTextTrainerParams({ cee: 3 })).toThrow(/cee/);
  });

  it("cross-validates deterministically", () => {
    const many = [...examples, ...examples, ...examples];
    const cv = crossValidate(many, { minDf: 1 }, 3, 42);
    expect(cv.folds).toBe(3);
    expect(cv.accuracy.mean).toBeGreaterThan(0.5);
    expect(cv.accuracy.mean).toBeLessThanOrEqual(1);
    expect(cv.macroF1.std).toBeGreaterThanOrEqual(0);
    expect(crossValidate(many, { minDf: 1 }, 3, 42)).toEqual(cv);
  });
});

describe("GraphBuilder", () => {
  it("builds a tabular classifier with a ZipMap output that onnxruntime runs", async () => {
    const g = new GraphBuilder("tabular");
    g.input("features", { tensor: "float", shape: ["N", 2] });
    g.output("probabilities", { tensor: "float", shape: ["N", 2] });
    g.output("zipmap", { sequence: { map: { key: "string", value: { tensor: "float" } } } });
    g.output("label", { tensor: "string", shape: ["N"] });
    const W = g.initializer("W", { dtype: "float", dims: [2, 2], values: [1, -1, -1, 1] });
    const logits = g.op("MatMul", ["features", W]);
    g.node("Softmax", [logits], ["probabilities"], { axis: 1 });
    g.node(
      "ZipMap",
      ["probabilities"],
      ["zipmap"],
      { classlabels_strings: ["a", "b"] },
      { domain: "ai.onnx.ml" },
    );
    const names = g.initializer("names", { dtype: "string", dims: [2], values: ["a", "b"] });
    g.node("Gather", [names, g.op("ArgMax", ["probabilities"], { axis: 1, keepdims: 0 })], ["label"]);
    g.op("LeakyRelu", ["features"], { alpha: attr.float(0.5) }, { name: "unused" }); // float attributes encode
    const bytes = g.toModel({ opsets: { "": 17, "ai.onnx.ml": 3 }, metadata: { purpose: "test" } });
    const session = await ort.InferenceSession.create(bytes);
    // onnxruntime-node cannot fetch non-tensor outputs ("Non tensor type is temporarily not supported"),
    // so fetch the tensors by name and check the ZipMap output is declared as a non-tensor.
    const feeds = { features: new ort.Tensor("float32", Float32Array.from([2, 0, 0, 3]), [2, 2]) };
    const out = await session.run(feeds, ["probabilities", "label"]);
    const zipmap = session.outputMetadata.find((o) => o.name === "zipmap");
    expect(zipmap?.isTensor).toBe(false);
    expect(out.label!.data).toEqual(["a", "b"]);
    const p = out.probabilities!.data as Float32Array;
    expect(p[0]).toBeCloseTo(1 / (1 + Math.exp(-4)), 6);
    expect(session.outputNames).toEqual(["probabilities", "zipmap", "label"]);
  });

  it("rejects a tensor whose values do not fit its dims", () => {
    const g = new GraphBuilder("bad");
    expect(() => g.initializer("x", { dtype: "float", dims: [2, 2], values: [1, 2, 3] })).toThrow(
      /need 4 values/,
    );
  });
});
