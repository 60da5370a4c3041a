import { describe, expect, it } from "vitest";
import { disagreements, mcnemarExact, pairedBootstrap } from "../src/gate/stats.js";
import { evaluateClassifier } from "../src/metrics/classification.js";
import { percentile } from "../src/stats/distribution.js";
import { createRng } from "../training/random.js";

/** Exact two-sided McNemar p with big integers: 2·Σ_{k≤min} C(n,k) / 2^n, capped at 1. */
function mcnemarBig(b: number, c: number): number {
  const n = BigInt(b + c);
  const m = BigInt(Math.min(b, c));
  let binom = 1n;
  let sum = 0n;
  for (let k = 0n; k <= m; k++) {
    sum += binom;
    binom = (binom * (n - k)) / (k + 1n);
  }
  const scale = 10n ** 40n;
  const ratio = (2n * sum * scale) / 2n ** n;
  return Math.min(1, Number(ratio) / Number(scale));
}

describe("McNemar's exact test", () => {
  it("matches hand-computed p-values", () => {
    // No disagreements: nothing to test.
    expect(mcnemarExact(0, 0)).toBe(1);
    // n = 1: 2 · ½ = 1.
    expect(mcnemarExact(1, 0)).toBe(1);
    // 0 vs 5: 2 · (1/32) = 0.0625.
    expect(mcnemarExact(0, 5)).toBeCloseTo(0.0625, 12);
    // 0 vs 6: 2 · (1/64) = 0.03125.
    expect(mcnemarExact(6, 0)).toBeCloseTo(0.03125, 12);
    // 1 vs 9: 2 · (1 + 10)/1024 = 22/1024.
    expect(mcnemarExact(1, 9)).toBeCloseTo(22 / 1024, 12);
    // 2 vs 10: 2 · (1 + 12 + 66)/4096 = 158/4096 = 0.03857421875.
    expect(mcnemarExact(2, 10)).toBeCloseTo(0.03857421875, 12);
    expect(mcnemarExact(10, 2)).toBeCloseTo(0.03857421875, 12);
    // 3 vs 7: 2 · (1 + 10 + 45 + 120)/1024 = 352/1024 = 0.34375.
    expect(mcnemarExact(3, 7)).toBeCloseTo(0.34375, 12);
    // Balanced: the two-sided tail exceeds 1 and is capped.
    expect(mcnemarExact(5, 5)).toBe(1);
  });

  it("agrees with exact big-integer arithmetic for thousands of disagreements (no underflow)", () => {
    for (const [b, c] of [
      [46, 114],
      [4, 4],
      [400, 520],
      [1000, 1100],
      [1, 1500],
    ] as const) {
      const exact = mcnemarBig(b, c);
      const got = mcnemarExact(b, c);
      if (exact === 0) expect(got).toBeLessThan(1e-300);
      else expect(Math.abs(got - exact) / exact).toBeLessThan(1e-9);
    }
    expect(mcnemarExact(46, 114)).toBeLessThan(1e-6);
    expect(() => mcnemarExact(-1, 2)).toThrow(RangeError);
  });
});

/** Synthetic labelled predictions: the candidate is right with probability pc, the baseline with pb. */
function synthetic(n: number, k: number, pc: number, pb: number, seed: number) {
  const rng = createRng(seed);
  const yTrue = new Int32Array(n);
  const cand = new Int32Array(n);
  const base = new Int32Array(n);
  const candProbs: number[][] = [];
  const baseProbs: number[][] = [];
  const answer = (t: number, p: number) => (rng() < p ? t : (t + 1 + Math.floor(rng() * (k - 1))) % k);
  const probs = (pred: number) => {
    const row = new Array<number>(k).fill(0);
    const top = 0.5 + rng() * 0.5;
    row[pred] = top;
    for (let j = 0; j < k; j++) if (j !== pred) row[j] = (1 - top) / (k - 1);
    return row;
  };
  for (let i = 0; i < n; i++) {
    yTrue[i] = Math.floor(rng() * k);
    cand[i] = answer(yTrue[i]!, pc);
    base[i] = answer(yTrue[i]!, pb);
    candProbs.push(probs(cand[i]!));
    baseProbs.push(probs(base[i]!));
  }
  return { yTrue, cand, base, candProbs, baseProbs };
}

describe("paired bootstrap", () => {
  const labels = ["negative", "positive"];
  const s = synthetic(1500, 2, 0.9, 0.88, 1);
  const input = {
    labels,
    yTrue: s.yTrue,
    candidate: s.cand,
    baseline: s.base,
    candidateScore: s.candProbs.map((p) => p[1]!),
    baselineScore: s.baseProbs.map((p) => p[1]!),
  };

  it("is deterministic for a seed and changes with it", () => {
    const a = pairedBootstrap(input, { resamples: 500, seed: 3, confidence: 0.95 });
    const b = pairedBootstrap(input, { resamples: 500, seed: 3, confidence: 0.95 });
    const c = pairedBootstrap(input, { resamples: 500, seed: 4, confidence: 0.95 });
    expect(b).toEqual(a);
    expect(c.map((m) => m.low)).not.toEqual(a.map((m) => m.low));
    expect(c.map((m) => m.delta)).toEqual(a.map((m) => m.delta));
  });

  it("point values equal the metrics model.json reports (accuracy, macro-F1, class F1, ROC AUC)", () => {
    const diffs = pairedBootstrap(input, { resamples: 200, seed: 1, confidence: 0.95 });
    const yTrue = Array.from(s.yTrue);
    const mc = evaluateClassifier({ labels, yTrue, probabilities: s.candProbs });
    const mb = evaluateClassifier({ labels, yTrue, probabilities: s.baseProbs });
    const by = Object.fromEntries(diffs.map((d) => [d.key, d]));
    expect(by.accuracy!.candidate).toBeCloseTo(mc.accuracy, 12);
    expect(by.accuracy!.baseline).toBeCloseTo(mb.accuracy, 12);
    expect(by.macroF1!.candidate).toBeCloseTo(mc.macroF1, 12);
    expect(by["classF1[positive]"]!.baseline).toBeCloseTo(mb.classes.positive!.f1, 12);
    expect(by.rocAuc!.candidate).toBeCloseTo(mc.rocAuc!, 12);
    expect(by.rocAuc!.baseline).toBeCloseTo(mb.rocAuc!, 12);
    for (const d of diffs) {
      expect(d.delta).toBeCloseTo(d.candidate - d.baseline, 12);
      expect(d.low).toBeLessThanOrEqual(d.high);
    }
  });

  it("identical models: every difference is exactly 0 and McNemar has nothing to test", () => {
    const same = { ...input, baseline: s.cand, baselineScore: input.candidateScore };
    for (const d of pairedBootstrap(same, { resamples: 200, seed: 1, confidence: 0.95 })) {
      expect([d.delta, d.low, d.high]).toEqual([0, 0, 0]);
    }
    const dis = disagreements(same);
    expect([dis.candidateOnly, dis.baselineOnly, dis.differentAnswers, dis.pValue]).toEqual([0, 0, 0, 1]);
  });

  it("a clearly better candidate has an interval above 0; equal ones an interval around 0", () => {
    const better = synthetic(2000, 3, 0.9, 0.8, 5);
    const up = pairedBootstrap(
      { labels: ["a", "b", "c"], yTrue: better.yTrue, candidate: better.cand, baseline: better.base },
      { resamples: 1000, seed: 1, confidence: 0.95 },
    );
    const acc = up.find((d) => d.key === "accuracy")!;
    expect(acc.low).toBeGreaterThan(0);
    expect(up.some((d) => d.key === "rocAuc")).toBe(false); // multiclass: no AUC
    const dis = disagreements({
      labels: ["a", "b", "c"],
      yTrue: better.yTrue,
      candidate: better.cand,
      baseline: better.base,
    });
    expect(dis.candidateOnly).toBeGreaterThan(dis.baselineOnly);
    expect(dis.pValue).toBeLessThan(1e-6);
    expect(dis.candidateOnly + dis.baselineOnly + dis.bothRight + dis.bothWrong).toBe(2000);

    const equal = synthetic(2000, 2, 0.9, 0.9, 6);
    const flat = pairedBootstrap(
      { labels, yTrue: equal.yTrue, candidate: equal.cand, baseline: equal.base },
      { resamples: 1000, seed: 1, confidence: 0.95 },
    ).find((d) => d.key === "accuracy")!;
    expect(flat.low).toBeLessThan(0);
    expect(flat.high).toBeGreaterThan(0);
  });

  it("a wider confidence level gives a wider interval", () => {
    const at = (confidence: number) =>
      pairedBootstrap(input, { resamples: 1000, seed: 9, confidence }).find((d) => d.key === "accuracy")!;
    const narrow = at(0.8);
    const wide = at(0.99);
    expect(wide.high - wide.low).toBeGreaterThan(narrow.high - narrow.low);
  });

  it("percentile interpolates like numpy", () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 0)).toBe(1);
    expect(percentile([1, 2, 3, 4], 1)).toBe(4);
    expect(percentile([], 0.5)).toBeNaN();
  });
});
