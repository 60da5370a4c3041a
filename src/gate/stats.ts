import { createRng } from "../../training/random.js";
import { percentile } from "../stats/distribution.js";

/**
 * Paired statistics for the gate: both models answered the same rows, so their difference is judged
 * on those rows — McNemar's exact test on the disagreements for accuracy, a seeded paired bootstrap
 * (rows resampled with replacement, both models scored on each resample) for every metric's
 * difference. Pure and deterministic for a seed.
 */

/**
 * McNemar's exact test (two-sided): under "both models are equally accurate" each disagreement where
 * exactly one model is right is a fair coin, so the smaller count is Binomial(b + c, ½).
 * p = min(1, 2·P(X ≤ min(b, c))). Summed in log space so thousands of disagreements do not underflow.
 */
export function mcnemarExact(b: number, c: number): number {
  if (!(Number.isInteger(b) && Number.isInteger(c) && b >= 0 && c >= 0)) {
    throw new RangeError(`McNemar counts must be non-negative integers, got ${b} and ${c}`);
  }
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  const ln2n = n * Math.LN2;
  // log C(n, i) for i = 0..k, then log-sum-exp of log C(n, i) − n·ln 2.
  const logs: number[] = [];
  let logC = 0;
  for (let i = 0; i <= k; i++) {
    logs.push(logC - ln2n);
    logC += Math.log(n - i) - Math.log(i + 1);
  }
  const max = Math.max(...logs);
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - max);
  const tail = Math.exp(max + Math.log(sum));
  return Math.min(1, 2 * tail);
}

export interface PairedInput {
  /** Class labels; indices below refer to this order. For two classes labels[1] is the positive one. */
  labels: readonly string[];
  yTrue: ArrayLike<number>;
  candidate: ArrayLike<number>;
  baseline: ArrayLike<number>;
  /** Binary tasks: each model's probability of labels[1], for ROC AUC. */
  candidateScore?: ArrayLike<number>;
  baselineScore?: ArrayLike<number>;
}

export interface BootstrapOptions {
  resamples: number;
  seed: number;
  /** Two-sided confidence level of the percentile interval, e.g. 0.95. */
  confidence: number;
}

export interface MetricDifference {
  /** Stable key: accuracy, macroF1, rocAuc, classF1[<label>]. */
  key: string;
  candidate: number;
  baseline: number;
  /** candidate − baseline on the evaluation rows. */
  delta: number;
  /** Percentile bootstrap interval of the difference. */
  low: number;
  high: number;
  /** Resamples on which the metric was defined for both (AUC needs both classes present). */
  resamples: number;
}

export interface Disagreements {
  /** Rows the candidate got right and the production model got wrong. */
  candidateOnly: number;
  /** Rows the production model got right and the candidate got wrong. */
  baselineOnly: number;
  /** Rows both got right / both got wrong. */
  bothRight: number;
  bothWrong: number;
  /** Rows where the two predicted labels differ (both wrong but different answers included). */
  differentAnswers: number;
  /** McNemar's exact two-sided p-value on (candidateOnly, baselineOnly). */
  pValue: number;
}

/** Counts where exactly one model is right, and McNemar's p-value on them. */
export function disagreements(input: PairedInput): Disagreements {
  let candidateOnly = 0;
  let baselineOnly = 0;
  let bothRight = 0;
  let bothWrong = 0;
  let differentAnswers = 0;
  for (let i = 0; i < input.yTrue.length; i++) {
    const t = input.yTrue[i];
    const c = input.candidate[i] === t;
    const b = input.baseline[i] === t;
    if (input.candidate[i] !== input.baseline[i]) differentAnswers++;
    if (c && !b) candidateOnly++;
    else if (b && !c) baselineOnly++;
    else if (b && c) bothRight++;
    else bothWrong++;
  }
  return {
    candidateOnly,
    baselineOnly,
    bothRight,
    bothWrong,
    differentAnswers,
    pValue: mcnemarExact(candidateOnly, baselineOnly),
  };
}

/**
 * Accuracy, macro-F1 and per-class F1 of both models from counts per (true, candidate, baseline)
 * combination — k³ numbers instead of n rows — written as [acc, macroF1, f1 × k, auc] per model.
 */
function confusionMetrics(cells: Float64Array, k: number, outC: Float64Array, outB: Float64Array): void {
  for (const [out, which] of [
    [outC, 0],
    [outB, 1],
  ] as const) {
    let total = 0;
    let hits = 0;
    let f1sum = 0;
    for (let c = 0; c < k; c++) {
      let tp = 0;
      let predicted = 0;
      let support = 0;
      for (let a = 0; a < k; a++) {
        for (let b = 0; b < k; b++) {
          // cell (t = c, pc = a, pb = b) for support; (t, p = c) for predicted
          const own = which === 0 ? a : b;
          const n = cells[(c * k + a) * k + b]!;
          support += n;
          if (own === c) tp += n;
          const m = which === 0 ? cells[(a * k + c) * k + b]! : cells[(a * k + b) * k + c]!;
          predicted += m;
        }
      }
      total += support;
      hits += tp;
      const precision = predicted === 0 ? 0 : tp / predicted;
      const recall = support === 0 ? 0 : tp / support;
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      out[2 + c] = f1;
      f1sum += f1;
    }
    out[0] = total === 0 ? Number.NaN : hits / total;
    out[1] = f1sum / k;
  }
}

/** Rows sorted by score with tie groups, for a weighted Mann–Whitney AUC in one pass. */
class AucScorer {
  private readonly order: Int32Array;
  private readonly groupEnd: Int32Array;

  constructor(
    private readonly positive: Uint8Array,
    score: ArrayLike<number>,
  ) {
    const n = positive.length;
    this.order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a]! - score[b]!);
    this.groupEnd = new Int32Array(n);
    for (let i = n - 1; i >= 0; i--) {
      this.groupEnd[i] =
        i + 1 < n && score[this.order[i + 1]!] === score[this.order[i]!] ? this.groupEnd[i + 1]! : i + 1;
    }
  }

  /** Ties count half, as sklearn's roc_auc_score; NaN when a class is absent from the draw. */
  auc(w: ArrayLike<number>): number {
    const { order, groupEnd, positive } = this;
    let negBelow = 0;
    let area = 0;
    let pos = 0;
    let i = 0;
    while (i < order.length) {
      const end = groupEnd[i]!;
      let gPos = 0;
      let gNeg = 0;
      for (let j = i; j < end; j++) {
        const row = order[j]!;
        const wi = w[row]!;
        if (wi === 0) continue;
        if (positive[row] === 1) gPos += wi;
        else gNeg += wi;
      }
      area += gPos * (negBelow + gNeg / 2);
      negBelow += gNeg;
      pos += gPos;
      i = end;
    }
    if (pos === 0 || negBelow === 0) return Number.NaN;
    return area / (pos * negBelow);
  }
}

/** Metric keys in the order the bootstrap computes them. */
export function metricKeys(labels: readonly string[]): string[] {
  return ["accuracy", "macroF1", ...labels.map((l) => `classF1[${l}]`), "rocAuc"];
}

/**
 * Paired percentile bootstrap of candidate − baseline for accuracy, macro-F1, each class's F1 and
 * (binary, with scores) ROC AUC. Each resample draws n rows with replacement (mulberry32 seeded by
 * `seed`) and scores both models on the same draw, so what the models share cancels out.
 */
export function pairedBootstrap(input: PairedInput, options: BootstrapOptions): MetricDifference[] {
  const n = input.yTrue.length;
  const k = input.labels.length;
  if (n === 0) return [];
  if (input.candidate.length !== n || input.baseline.length !== n) {
    throw new RangeError(
      `paired bootstrap: ${n} labels but ${input.candidate.length}/${input.baseline.length} predictions`,
    );
  }
  const combo = new Int32Array(n);
  for (let i = 0; i < n; i++) combo[i] = (input.yTrue[i]! * k + input.candidate[i]!) * k + input.baseline[i]!;
  const binary = k === 2 && input.candidateScore !== undefined && input.baselineScore !== undefined;
  const positive = Uint8Array.from({ length: n }, (_, i) => (input.yTrue[i] === 1 ? 1 : 0));
  const aucC = binary ? new AucScorer(positive, input.candidateScore!) : undefined;
  const aucB = binary ? new AucScorer(positive, input.baselineScore!) : undefined;

  const width = k + 3;
  const cells = new Float64Array(k * k * k);
  const score = (w: ArrayLike<number>, outC: Float64Array, outB: Float64Array) => {
    cells.fill(0);
    for (let i = 0; i < n; i++) cells[combo[i]!]! += w[i]!;
    confusionMetrics(cells, k, outC, outB);
    outC[2 + k] = aucC ? aucC.auc(w) : Number.NaN;
    outB[2 + k] = aucB ? aucB.auc(w) : Number.NaN;
  };
  const pointC = new Float64Array(width);
  const pointB = new Float64Array(width);
  const ones = new Float64Array(n).fill(1);
  score(ones, pointC, pointB);

  const deltas: Float64Array[] = Array.from({ length: width }, () => new Float64Array(options.resamples));
  const counts = new Int32Array(width);
  const w = new Float64Array(n);
  const outC = new Float64Array(width);
  const outB = new Float64Array(width);
  const rng = createRng(options.seed);
  for (let r = 0; r < options.resamples; r++) {
    w.fill(0);
    for (let i = 0; i < n; i++) w[Math.floor(rng() * n)]!++;
    score(w, outC, outB);
    for (let m = 0; m < width; m++) {
      const d = outC[m]! - outB[m]!;
      if (Number.isNaN(d)) continue;
      deltas[m]![counts[m]!++] = d;
    }
  }

  const alpha = 1 - options.confidence;
  const keys = metricKeys(input.labels);
  const result: MetricDifference[] = [];
  keys.forEach((key, m) => {
    if (Number.isNaN(pointC[m]!) || Number.isNaN(pointB[m]!)) return;
    const sorted = deltas[m]!.subarray(0, counts[m]!).sort();
    result.push({
      key,
      candidate: pointC[m]!,
      baseline: pointB[m]!,
      delta: pointC[m]! - pointB[m]!,
      low: percentile(sorted, alpha / 2),
      high: percentile(sorted, 1 - alpha / 2),
      resamples: counts[m]!,
    });
  });
  return result;
}
