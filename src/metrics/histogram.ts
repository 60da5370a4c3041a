import type { Histogram } from "../contracts/card.js";

/**
 * Counts values into bins [e0,e1), [e1,e2), …, [e(n-1), en] (last bin closed, as numpy.histogram).
 * Values outside the edges go to the nearest end bin, so no observation is silently dropped.
 */
export function histogram(values: Iterable<number>, edges: readonly number[]): Histogram {
  if (edges.length < 2) throw new RangeError("a histogram needs at least two edges");
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (const v of values) counts[binIndex(v, edges)]!++;
  return { edges: [...edges], counts };
}

/** `bins` equal-width edges over [lo, hi]. */
export function equalEdges(lo: number, hi: number, bins: number): number[] {
  return Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
}

/** Bin of v: last bin closed, out-of-range values to the nearest end bin (drift counts use it too). */
export function binIndex(v: number, edges: readonly number[]): number {
  const last = edges.length - 2;
  if (!(v >= edges[0]!)) return 0;
  if (v >= edges[last + 1]!) return last;
  // binary search for the bin with edges[i] <= v < edges[i+1]
  let lo = 0;
  let hi = last;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid]! <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
