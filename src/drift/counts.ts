import type { Reference } from "../contracts/card.js";
import { binIndex } from "../metrics/histogram.js";

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
  /** Tabular models: per input feature, counts over reference.features[i].histogram bins. */
  featureBins?: number[][];
}

export interface CountsLayout {
  scoreEdges: readonly number[];
  labels: readonly string[];
  lengthEdges: readonly number[];
  /** Tabular models with a feature schema: bin edges per feature, in input order. */
  featureEdges?: readonly (readonly number[])[];
}

export function layoutOf(reference: Reference, labels: readonly string[]): CountsLayout {
  return {
    scoreEdges: reference.scoreHistogram.edges,
    labels,
    lengthEdges: reference.inputLengthHistogram?.edges ?? [],
    ...(reference.features ? { featureEdges: reference.features.map((f) => f.histogram.edges) } : {}),
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
    ...(layout.featureEdges
      ? { featureBins: layout.featureEdges.map((e) => new Array<number>(e.length - 1).fill(0)) }
      : {}),
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
  if (target.featureBins && source.featureBins) {
    if (target.featureBins.length !== source.featureBins.length)
      throw new RangeError("count layout mismatch (features)");
    for (let i = 0; i < target.featureBins.length; i++)
      addInto(target.featureBins[i]!, source.featureBins[i]!, sign);
  }
}

function addInto(a: number[], b: readonly number[], sign: number): void {
  if (a.length !== b.length) throw new RangeError(`count layout mismatch (${a.length} vs ${b.length} bins)`);
  for (let i = 0; i < a.length; i++) a[i]! += sign * b[i]!;
}

/** The reference histograms were built with the same binning rule: one implementation serves both. */
export const binOf = binIndex;

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
