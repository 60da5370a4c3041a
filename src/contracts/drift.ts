import { z } from "zod";

/**
 * The drift thresholds shared by the model server (`MODELSHIP_DRIFT_*`), its `GET /drift` report and the
 * drift policy of modelship.yaml.
 */

/**
 * Defaults measured on the airline model (test/drift.test.ts, README "Drift"): over 400 in-distribution
 * windows of 1000 predictions the largest values were score PSI 0.018, class-mix distance 0.036, length
 * PSI 0.024, OOV rate 0.061, so each threshold sits at 2× or more the worst in-distribution window.
 * PSI noise scales like (bins − 1) / window: a smaller window needs larger thresholds.
 */
export const DEFAULT_THRESHOLDS = {
  scorePsi: 0.05,
  classMixDistance: 0.075,
  inputLengthPsi: 0.05,
  oovRate: 0.15,
  featurePsi: 0.2,
} as const;

export const DEFAULT_WINDOW = 1000;

export const thresholdsSchema = z.object({
  scorePsi: z
    .number()
    .positive()
    .default(DEFAULT_THRESHOLDS.scorePsi)
    .describe("PSI of the predicted-class confidence versus the bundle's test-split reference."),
  classMixDistance: z
    .number()
    .positive()
    .max(1)
    .default(DEFAULT_THRESHOLDS.classMixDistance)
    .describe("Total-variation distance of the predicted class mix versus the test split."),
  inputLengthPsi: z
    .number()
    .positive()
    .default(DEFAULT_THRESHOLDS.inputLengthPsi)
    .describe("PSI of input text length (characters) versus the test-split reference."),
  oovRate: z
    .number()
    .positive()
    .max(1)
    .default(DEFAULT_THRESHOLDS.oovRate)
    .describe("Share of input tokens outside the model's vocabulary."),
  featurePsi: z
    .number()
    .positive()
    .default(DEFAULT_THRESHOLDS.featurePsi)
    .describe("Tabular models: PSI of each input feature versus its reference histogram (feature schema)."),
});
export type DriftThresholds = z.infer<typeof thresholdsSchema>;

/** How a boolean server setting reads "on" in the environment. */
export const TRUE_TEXT = /^(1|true|yes|on)$/i;

/**
 * Whether a model server started with `env` writes hashes instead of texts to its prediction log
 * (MODELSHIP_PREDICTION_LOG_HASH_TEXT, src/drift/settings.ts): then no request text may be shown
 * anywhere else either (the shadow step's disagreeing examples).
 */
export function envHashesText(env: Record<string, string | undefined> | undefined): boolean {
  return TRUE_TEXT.test(env?.MODELSHIP_PREDICTION_LOG_HASH_TEXT?.trim() ?? "");
}
