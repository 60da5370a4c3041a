import { createRng } from "../../training/random.js";

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

/** One model's metrics on rows weighted by how often a resample drew them. */
class WeightedScorer {
  private readonly k: number;
  private readonly tp: Float64Array;
  private readonly predicted: Float64Array;
  private readonly support: Float64Array;
  /** Row order by score and the start of each tie group, for AUC in one pass. */
  private readonly order: Int32Array | undefined;
  private readonly groupEnd: Int32Array | undefined;

  constructor(
    private readonly yTrue: ArrayLike<number>,
    private readonly pred: ArrayLike<number>,
    classes: number,
    score: ArrayLike<number> | undefined,
  ) {
    this.k = classes;
    this.tp = new Float64Array(classes);
    this.predicted = new Float64Array(classes);
    this.support = new Float64Array(classes);
    if (score) {
      const n = yTrue.length;
      const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a]! - score[b]!);
      const groupEnd = new Int32Array(n);
      for (let i = n - 1; i >= 0; i--) {
        groupEnd[i] = i + 1 < n && score[order[i + 1]!] === score[order[i]!] ? groupEnd[i + 1]! : i + 1;
      }
      this.order = order;
      this.groupEnd = groupEnd;
    }
  }

  /** accuracy, macroF1, per-class F1 (k values), AUC (NaN when undefined) into `out`. */
  measure(w: ArrayLike<number>, out: Float64Array): void {
    const { k, tp, predicted, support, yTrue, pred } = this;
    tp.fill(0);
    predicted.fill(0);
    support.fill(0);
    let total = 0;
    let hits = 0;
    for (let i = 0; i < yTrue.length; i++) {
      const wi = w[i]!;
      if (wi === 0) continue;
      const t = yTrue[i]!;
      const p = pred[i]!;
      total += wi;
      support[t]! += wi;
      predicted[p]! += wi;
      if (t === p) {
        hits += wi;
        tp[t]! += wi;
      }
    }
    out[0] = total === 0 ? Number.NaN : hits / total;
    let f1sum = 0;
    for (let c = 0; c < k; c++) {
      const precision = predicted[c] === 0 ? 0 : tp[c]! / predicted[c]!;
      const recall = support[c] === 0 ? 0 : tp[c]! / support[c]!;
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      out[2 + c] = f1;
      f1sum += f1;
    }
    out[1] = f1sum / k;
    out[2 + k] = this.auc(w);
  }

  /** Weighted Mann–Whitney AUC: ties count half, as sklearn's roc_auc_score. */
  private auc(w: ArrayLike<number>): number {
    const { order, groupEnd, yTrue } = this;
    if (!order || !groupEnd) return Number.NaN;
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
        if (yTrue[row] === 1) gPos += wi;
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

/** Metric keys in the order WeightedScorer writes them. */
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
  const binary = k === 2 && input.candidateScore !== undefined && input.baselineScore !== undefined;
  const cand = new WeightedScorer(input.yTrue, input.candidate, k, binary ? input.candidateScore : undefined);
  const base = new WeightedScorer(input.yTrue, input.baseline, k, binary ? input.baselineScore : undefined);
  const width = k + 3;
  const pointC = new Float64Array(width);
  const pointB = new Float64Array(width);
  const ones = new Float64Array(n).fill(1);
  cand.measure(ones, pointC);
  base.measure(ones, pointB);

  const deltas: Float64Array[] = Array.from({ length: width }, () => new Float64Array(options.resamples));
  const counts = new Int32Array(width);
  const w = new Float64Array(n);
  const outC = new Float64Array(width);
  const outB = new Float64Array(width);
  const rng = createRng(options.seed);
  for (let r = 0; r < options.resamples; r++) {
    w.fill(0);
    for (let i = 0; i < n; i++) w[Math.floor(rng() * n)]!++;
    cand.measure(w, outC);
    base.measure(w, outB);
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

/** Linear-interpolated percentile of an ascending array (numpy's default). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
