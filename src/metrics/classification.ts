import type { Metrics } from "../contracts/card.js";

/**
 * Classification metrics with scikit-learn's conventions, so numbers in model.json can be compared
 * with what ML engineers compute in notebooks: zero division gives 0, ROC AUC averages ties,
 * std is the population std (numpy's default, as in `cross_val_score(...).std()`).
 */

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** Row = true class index, column = predicted class index. */
export function confusionMatrix(
  yTrue: readonly number[],
  yPred: readonly number[],
  nClasses: number,
): number[][] {
  assertSameLength(yTrue, yPred);
  const m = Array.from({ length: nClasses }, () => new Array<number>(nClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i]!;
    const p = yPred[i]!;
    if (!isClassIndex(t, nClasses) || !isClassIndex(p, nClasses)) {
      throw new RangeError(
        `class index out of range at row ${i}: true ${t}, predicted ${p}, classes ${nClasses}`,
      );
    }
    m[t]![p]!++;
  }
  return m;
}

export function accuracy(yTrue: readonly number[], yPred: readonly number[]): number {
  assertSameLength(yTrue, yPred);
  if (yTrue.length === 0) return 0;
  let hit = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) hit++;
  return hit / yTrue.length;
}

/** Per-class precision/recall/F1/support from a confusion matrix (zero division → 0). */
export function perClassScores(matrix: readonly (readonly number[])[]): ClassScores[] {
  const n = matrix.length;
  return matrix.map((row, c) => {
    const tp = row[c] ?? 0;
    const support = row.reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < n; r++) predicted += matrix[r]![c] ?? 0;
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { precision, recall, f1, support };
  });
}

/** Unweighted mean of per-class F1 over all classes (sklearn `f1_score(average="macro")`). */
export function macroF1(scores: readonly ClassScores[]): number {
  if (scores.length === 0) return 0;
  return scores.reduce((a, s) => a + s.f1, 0) / scores.length;
}

/**
 * Binary ROC AUC of `scores` for the positive class. Equals the trapezoidal area under the ROC curve
 * (sklearn `roc_auc_score`), where tied scores count half. Undefined when only one class is present
 * (sklearn raises there).
 */
export function rocAuc(isPositive: readonly boolean[], scores: readonly number[]): number | undefined {
  assertSameLength(isPositive, scores);
  const order = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let nPos = 0;
  for (const p of isPositive) if (p) nPos++;
  const nNeg = isPositive.length - nPos;
  if (nPos === 0 || nNeg === 0) return undefined;
  // Mann–Whitney U with average ranks for ties.
  let rankSumPos = 0;
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (isPositive[order[k]!]) rankSumPos += avgRank;
    i = j + 1;
  }
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Mean and population standard deviation. */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  if (values.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Index of the largest value (first one on ties, like numpy's argmax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export interface EvaluateInput {
  labels: readonly string[];
  /** True class index per row, in `labels` order. */
  yTrue: readonly number[];
  /** Class probabilities per row, columns in `labels` order. */
  probabilities: readonly ArrayLike<number>[];
  cv?: Metrics["cv"];
}

/** Everything model.json's `metrics` holds, from true labels and predicted probabilities. */
export function evaluateClassifier(input: EvaluateInput): Metrics {
  const { labels, yTrue, probabilities } = input;
  if (probabilities.length !== yTrue.length) {
    throw new RangeError(`${yTrue.length} labels but ${probabilities.length} probability rows`);
  }
  const yPred = probabilities.map(argmax);
  const matrix = confusionMatrix(yTrue, yPred, labels.length);
  const scores = perClassScores(matrix);
  const classes: Metrics["classes"] = {};
  labels.forEach((label, c) => {
    classes[label] = scores[c]!;
  });
  const metrics: Metrics = {
    accuracy: accuracy(yTrue, yPred),
    macroF1: macroF1(scores),
    classes,
    confusionMatrix: { labels: [...labels], matrix },
    testRows: yTrue.length,
  };
  if (labels.length === 2) {
    const auc = rocAuc(
      yTrue.map((t) => t === 1),
      probabilities.map((p) => p[1]!),
    );
    if (auc !== undefined) metrics.rocAuc = auc;
  }
  if (input.cv) metrics.cv = input.cv;
  return metrics;
}

function isClassIndex(v: number, n: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < n;
}

function assertSameLength(a: readonly unknown[], b: readonly unknown[]): void {
  if (a.length !== b.length) throw new RangeError(`length mismatch: ${a.length} vs ${b.length}`);
}
