import type { FeatureSpec } from "../contracts/card.js";
import { histogram } from "../metrics/histogram.js";

/** Linear-interpolation quantile (numpy's default) of an ascending array. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError("quantile of no values");
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Decile edges with ties merged (discrete features have few distinct values); at least two edges. */
export function decileEdges(sorted: readonly number[]): number[] {
  const edges: number[] = [];
  for (let i = 0; i <= 10; i++) {
    const e = quantile(sorted, i / 10);
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  if (edges.length < 2) edges.push(edges[0]! + 1);
  return edges;
}

/** The feature schema of tabular reference rows: per column range, moments, quantiles, histogram. */
export function featureSchema(
  names: readonly string[],
  rows: readonly (readonly number[])[],
  dtype: "float32" | "float64",
): FeatureSpec[] {
  return names.map((name, j) => {
    const values = rows.map((r) => r[j]!);
    const sorted = [...values].sort((a, b) => a - b);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
    const edges = decileEdges(sorted);
    return {
      name,
      dtype,
      min: sorted[0]!,
      max: sorted[sorted.length - 1]!,
      mean,
      std: Math.sqrt(variance),
      quantiles: {
        p01: quantile(sorted, 0.01),
        p05: quantile(sorted, 0.05),
        p25: quantile(sorted, 0.25),
        p50: quantile(sorted, 0.5),
        p75: quantile(sorted, 0.75),
        p95: quantile(sorted, 0.95),
        p99: quantile(sorted, 0.99),
      },
      histogram: histogram(values, edges),
    };
  });
}

/** Row-wise softmax (numerically stable), for logits. */
export function softmaxRows(rows: readonly ArrayLike<number>[]): Float32Array[] {
  return rows.map((row) => {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
    const out = new Float32Array(row.length);
    let sum = 0;
    for (let i = 0; i < row.length; i++) {
      out[i] = Math.exp(row[i]! - max);
      sum += out[i]!;
    }
    for (let i = 0; i < row.length; i++) out[i] = out[i]! / sum;
    return out;
  });
}

/** First row that is not a probability distribution (entries in [0, 1], sum 1 ± tol), if any. */
export function firstNonProbabilityRow(
  rows: readonly ArrayLike<number>[],
  tol = 1e-3,
): { row: number; sum: number } | undefined {
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    let sum = 0;
    let bad = false;
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (!(v >= -1e-6 && v <= 1 + 1e-6)) bad = true;
      sum += v;
    }
    if (bad || !(Math.abs(sum - 1) <= tol)) return { row: r, sum };
  }
  return undefined;
}
