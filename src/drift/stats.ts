import { z } from "zod";
import type { Reference } from "../contracts/card.js";
import type { DriftThresholds } from "../contracts/drift.js";
import { psi, sharesOf, totalVariation } from "../stats/distribution.js";
import type { DriftCounts } from "./counts.js";

/** The four statistics, named as the monitoring rules label them (`statistic="score_psi"`, …). */
export const STATISTICS = ["score_psi", "class_mix_distance", "input_length_psi", "oov_rate"] as const;
export type StatisticName = (typeof STATISTICS)[number];

/** Prometheus gauge per statistic; `<name>_threshold` is exported next to each (monitoring/README.md). */
export const DRIFT_GAUGE: Record<StatisticName, string> = {
  score_psi: "modelship_drift_score_psi",
  class_mix_distance: "modelship_drift_class_mix_distance",
  input_length_psi: "modelship_drift_input_length_psi",
  oov_rate: "modelship_drift_oov_rate",
};

const THRESHOLD_KEY: Record<StatisticName, keyof DriftThresholds> = {
  score_psi: "scorePsi",
  class_mix_distance: "classMixDistance",
  input_length_psi: "inputLengthPsi",
  oov_rate: "oovRate",
};

export const statisticSchema = z.object({
  name: z.enum(STATISTICS),
  /** null: not applicable (no text input, no reference) or nothing observed yet. */
  value: z.number().nullable(),
  threshold: z.number(),
  over: z.boolean(),
});
export type Statistic = z.infer<typeof statisticSchema>;

/** `GET /drift` body; also what `modelship drift --log` computes. */
export const driftReportSchema = z.object({
  model: z.object({ name: z.string(), version: z.string() }),
  windowSize: z.number().int().positive(),
  observed: z.number().int().nonnegative(),
  /** The window holds at least windowSize predictions; only then can a statistic be "over". */
  full: z.boolean(),
  oldestAt: z.string().nullable(),
  newestAt: z.string().nullable(),
  drift: z.boolean(),
  statistics: z.array(statisticSchema),
  /** Tabular models with a feature schema: per-feature PSI; `moved` names those over the threshold. */
  features: z
    .array(
      z.object({ name: z.string(), psi: z.number().nullable(), threshold: z.number(), over: z.boolean() }),
    )
    .optional(),
  moved: z.array(z.string()).optional(),
});
export type DriftReport = z.infer<typeof driftReportSchema>;

/** Statistic values of a window of counts against the bundle's reference. */
export function statisticValues(
  counts: DriftCounts,
  reference: Reference,
  labels: readonly string[],
): Record<StatisticName, number | null> {
  if (counts.n === 0)
    return { score_psi: null, class_mix_distance: null, input_length_psi: null, oov_rate: null };
  return {
    score_psi: psi(counts.scoreBins, reference.scoreHistogram.counts),
    class_mix_distance: totalVariation(
      sharesOf(counts.classes),
      labels.map((l) => reference.classMix[l] ?? 0),
    ),
    input_length_psi:
      reference.inputLengthHistogram && counts.lengthBins.length > 0
        ? psi(counts.lengthBins, reference.inputLengthHistogram.counts)
        : null,
    oov_rate: counts.tokens > 0 ? counts.oovTokens / counts.tokens : null,
  };
}

/** The full report: each statistic with its threshold; "over" only once the window is full. */
export function evaluateDrift(options: {
  counts: DriftCounts;
  reference: Reference;
  labels: readonly string[];
  model: { name: string; version: string };
  thresholds: DriftThresholds;
  windowSize: number;
  oldestAt?: Date | undefined;
  newestAt?: Date | undefined;
}): DriftReport {
  const { counts, thresholds, windowSize } = options;
  const values = statisticValues(counts, options.reference, options.labels);
  const full = counts.n >= windowSize;
  const statistics = STATISTICS.map((name) => {
    const value = values[name];
    const threshold = thresholds[THRESHOLD_KEY[name]];
    return {
      name,
      value: value === null ? null : round(value),
      threshold,
      over: full && value !== null && value > threshold,
    };
  });
  const features = featureStatistics(counts, options.reference, thresholds.featurePsi, full);
  return {
    model: options.model,
    windowSize,
    observed: counts.n,
    full,
    oldestAt: options.oldestAt?.toISOString() ?? null,
    newestAt: options.newestAt?.toISOString() ?? null,
    drift: statistics.some((s) => s.over) || (features?.some((f) => f.over) ?? false),
    statistics,
    ...(features ? { features, moved: features.filter((f) => f.over).map((f) => f.name) } : {}),
  };
}

/** Per-feature PSI of live values against the feature schema's reference histograms. */
export function featureStatistics(
  counts: DriftCounts,
  reference: Reference,
  threshold: number,
  full: boolean,
): { name: string; psi: number | null; threshold: number; over: boolean }[] | undefined {
  const specs = reference.features;
  if (!specs || !counts.featureBins) return undefined;
  return specs.map((spec, i) => {
    const bins = counts.featureBins![i];
    const value = counts.n === 0 || !bins ? null : round(psi(bins, spec.histogram.counts));
    return { name: spec.name, psi: value, threshold, over: full && value !== null && value > threshold };
  });
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
