/**
 * Distances between distributions, defined once: the canary analysis (canary vs stable) and drift
 * detection (live vs the training reference) both use these. Pure, no imports.
 */

/** Additive (Laplace-style) smoothing per bin, so an empty bin on either side gives a finite PSI. */
export const PSI_SMOOTHING = 0.5;

/**
 * Population stability index Σ (q − p) ln(q / p) of `observed` bin counts against `reference` bin
 * counts, both smoothed by PSI_SMOOTHING per bin (a shorter array counts as zeros in its missing
 * bins). ≈ χ²/n under no drift — about (bins − 1) / n — so its noise floor shrinks with the sample.
 * 0 when either side has no observations (nothing to compare).
 */
export function psi(observed: readonly number[], reference: readonly number[]): number {
  const k = Math.max(observed.length, reference.length);
  const no = sum(observed);
  const nr = sum(reference);
  if (k === 0 || no === 0 || nr === 0) return 0;
  const n = no + PSI_SMOOTHING * k;
  const r = nr + PSI_SMOOTHING * k;
  let total = 0;
  for (let i = 0; i < k; i++) {
    const q = ((observed[i] ?? 0) + PSI_SMOOTHING) / n;
    const p = ((reference[i] ?? 0) + PSI_SMOOTHING) / r;
    total += (q - p) * Math.log(q / p);
  }
  return total;
}

/** Counts → shares (all 0 when there are none). */
export function sharesOf(counts: readonly number[]): number[] {
  const n = sum(counts);
  return counts.map((c) => (n > 0 ? c / n : 0));
}

/**
 * Total-variation distance ½ Σ |p − q| between two distributions given as shares: the fraction of
 * predictions that would have to change class to turn one mix into the other.
 */
export function totalVariation(p: readonly number[], q: readonly number[]): number {
  const k = Math.max(p.length, q.length);
  let total = 0;
  for (let i = 0; i < k; i++) total += Math.abs((p[i] ?? 0) - (q[i] ?? 0));
  return total / 2;
}

/** totalVariation over label → share maps (a label missing on one side has share 0 there). */
export function labelTotalVariation(a: Record<string, number>, b: Record<string, number>): number {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return totalVariation(
    keys.map((k) => a[k] ?? 0),
    keys.map((k) => b[k] ?? 0),
  );
}

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
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
