import type { Reference } from "../bundle/schema.js";

/**
 * What drift is computed from: plain counts, so windows from several worker processes (and chunks of
 * one window) combine by addition. Layout follows the bundle's reference: confidence bins =
 * reference.scoreHistogram bins, classes = model labels, length bins = reference.inputLengthHistogram.
 */
export interface DriftCounts {
  /** Predictions counted. */
  n: number;
  scoreBins: number[];
  classes: number[];
  lengthBins: number[];
  /** Tokens seen in text inputs, and how many of them are outside the model's unigram vocabulary. */
  tokens: number;
  oovTokens: number;
}

export interface CountsLayout {
  scoreEdges: readonly number[];
  labels: readonly string[];
  lengthEdges: readonly number[];
}

export function layoutOf(reference: Reference, labels: readonly string[]): CountsLayout {
  return {
    scoreEdges: reference.scoreHistogram.edges,
    labels,
    lengthEdges: reference.inputLengthHistogram?.edges ?? [],
  };
}

export function emptyCounts(layout: CountsLayout): DriftCounts {
  return {
    n: 0,
    scoreBins: new Array<number>(layout.scoreEdges.length - 1).fill(0),
    classes: new Array<number>(layout.labels.length).fill(0),
    lengthBins: new Array<number>(Math.max(0, layout.lengthEdges.length - 1)).fill(0),
    tokens: 0,
    oovTokens: 0,
  };
}

/** target += sign × source (sign −1 removes a chunk that slid out of the window). */
export function addCounts(target: DriftCounts, source: DriftCounts, sign: 1 | -1 = 1): void {
  target.n += sign * source.n;
  addInto(target.scoreBins, source.scoreBins, sign);
  addInto(target.classes, source.classes, sign);
  addInto(target.lengthBins, source.lengthBins, sign);
  target.tokens += sign * source.tokens;
  target.oovTokens += sign * source.oovTokens;
}

function addInto(a: number[], b: readonly number[], sign: number): void {
  if (a.length !== b.length) throw new RangeError(`count layout mismatch (${a.length} vs ${b.length} bins)`);
  for (let i = 0; i < a.length; i++) a[i]! += sign * b[i]!;
}

/**
 * Bin of v in edges [e0,e1), …, [e(n-1), en]: last bin closed, out-of-range values to the nearest end
 * bin — the same rule as src/metrics/histogram.ts, which built the reference.
 */
export function binOf(v: number, edges: readonly number[]): number {
  const last = edges.length - 2;
  if (!(v >= edges[0]!)) return 0;
  if (v >= edges[last + 1]!) return last;
  let lo = 0;
  let hi = last;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid]! <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Length in code points (what the reference histogram counted), without allocating. */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}
