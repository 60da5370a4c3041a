import { z } from "zod";
import { DEFAULT_THRESHOLDS, DEFAULT_WINDOW, TRUE_TEXT, thresholdsSchema } from "../contracts/drift.js";
import { UserError } from "../util/errors.js";

/** Server-side drift settings. The image is configured by env only, so these are env variables. */
export const driftSettingsSchema = z.object({
  enabled: z.boolean().default(true),
  /** Predictions in the sliding window (across all workers). */
  window: z.number().int().min(10).max(1_000_000).default(DEFAULT_WINDOW),
  /** Predictions a worker counts before handing them to the primary (also flushed after flushMs). */
  chunk: z.number().int().min(1).max(10_000).default(50),
  flushMs: z.number().int().min(10).max(60_000).default(1000),
  /** Tokenize every n-th text for the OOV rate (1 = every text). */
  oovEvery: z.number().int().min(1).max(1000).default(4),
  thresholds: thresholdsSchema.default(thresholdsSchema.parse({})),
  log: z
    .object({
      /** JSONL file; rotated to <file>.1 … <file>.<files-1>. Empty = no prediction log. */
      file: z.string().optional(),
      /** Share of predictions written (0–1). */
      sample: z.number().min(0).max(1).default(0.1),
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .default(10 * 1024 * 1024),
      files: z.number().int().min(1).max(100).default(5),
      /** Store sha256 of the text instead of the text. */
      hashText: z.boolean().default(false),
    })
    .default({ sample: 0.1, maxBytes: 10 * 1024 * 1024, files: 5, hashText: false }),
});
export type DriftSettings = z.infer<typeof driftSettingsSchema>;

/** Env variable → setting path, with documented defaults (README "Drift"). */
export const DRIFT_ENV = {
  MODELSHIP_DRIFT: "enabled",
  MODELSHIP_DRIFT_WINDOW: "window",
  MODELSHIP_DRIFT_CHUNK: "chunk",
  MODELSHIP_DRIFT_FLUSH_MS: "flushMs",
  MODELSHIP_DRIFT_OOV_EVERY: "oovEvery",
  MODELSHIP_DRIFT_SCORE_PSI: "thresholds.scorePsi",
  MODELSHIP_DRIFT_CLASS_MIX_DISTANCE: "thresholds.classMixDistance",
  MODELSHIP_DRIFT_INPUT_LENGTH_PSI: "thresholds.inputLengthPsi",
  MODELSHIP_DRIFT_OOV_RATE: "thresholds.oovRate",
  MODELSHIP_DRIFT_FEATURE_PSI: "thresholds.featurePsi",
  MODELSHIP_PREDICTION_LOG: "log.file",
  MODELSHIP_PREDICTION_LOG_SAMPLE: "log.sample",
  MODELSHIP_PREDICTION_LOG_MAX_BYTES: "log.maxBytes",
  MODELSHIP_PREDICTION_LOG_FILES: "log.files",
  MODELSHIP_PREDICTION_LOG_HASH_TEXT: "log.hashText",
} as const;

const BOOLEAN_PATHS = new Set(["enabled", "log.hashText"]);

const STRING_PATHS = new Set(["log.file"]);

export function driftSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): DriftSettings {
  const raw: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(DRIFT_ENV)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    let parsed: unknown = value;
    if (BOOLEAN_PATHS.has(path)) {
      if (TRUE_TEXT.test(value)) parsed = true;
      else if (/^(0|false|no|off)$/i.test(value)) parsed = false;
    } else if (!STRING_PATHS.has(path)) parsed = value.trim() === "" ? Number.NaN : Number(value);
    const keys = path.split(".");
    let target = raw;
    for (const k of keys.slice(0, -1)) {
      target[k] ??= {};
      target = target[k] as Record<string, unknown>;
    }
    target[keys.at(-1)!] = parsed;
  }
  const result = driftSettingsSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.join(".");
    const name = Object.entries(DRIFT_ENV).find(([, p]) => p === path)?.[0];
    throw new UserError(`invalid drift setting ${name ?? path}: ${issue.message}`);
  }
  return result.data;
}

export { DEFAULT_THRESHOLDS };
