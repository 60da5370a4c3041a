import { z } from "zod";

/** Defaults that make `modelship train --data FILE` reproduce the acceptance numbers. */
export const TRAIN_DEFAULTS = {
  textColumn: "text",
  labelColumn: "airline_sentiment",
  out: "models",
  name: "model",
} as const;

const nonEmpty = z.string().trim().min(1);

/** `train:` in modelship.yaml. Paths are relative to the config file. Flags override every key. */
export const trainConfigSchema = z
  .object({
    /** CSV with a text column and a label column. */
    data: nonEmpty
      .optional()
      .describe("Labelled CSV, relative to this file. Unset: --data, else $MODELSHIP_DATA."),
    textColumn: nonEmpty.optional().describe("CSV column holding the text."),
    labelColumn: nonEmpty.optional().describe("CSV column holding the label."),
    /** Keep only these labels (rows with other labels are dropped). Class order is always sorted. */
    labels: z
      .array(nonEmpty)
      .min(2, "list at least two classes")
      .optional()
      .describe("Keep only these labels; rows with other labels are dropped. Classes are sorted."),
    /** Rename labels before filtering, e.g. { pos: positive }. */
    labelMap: z
      .record(nonEmpty, nonEmpty)
      .optional()
      .describe("Rename labels before filtering, e.g. { pos: positive }."),
    /** Rows with empty text or label: fail (default, lists the lines) or drop and count them. */
    onEmpty: z
      .enum(["error", "drop"])
      .optional()
      .describe("Rows with empty text or label: error (default, lists the lines) or drop and count them."),
    /**
     * Trainer parameters, including seed, testSize and cvFolds (training/params.ts); validated against
     * the trainer's own schema, so unknown ones are reported as train.params.<key>.
     */
    params: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("Trainer parameters (train.params.* below); unknown keys are errors."),
    /** Directory that receives `<name>-<version>/` bundles. */
    out: nonEmpty
      .optional()
      .describe("Directory that receives <name>-<version>/ bundles, relative to this file."),
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' or '-'")
      .optional()
      .describe("Model name; bundles are written to <out>/<name>-<version>/."),
  })
  .strict();

/** `validate:` in modelship.yaml: production-checklist limits checked by train and validate. */
export const checkLimitsSchema = z
  .object({
    maxSizeMb: z.number().positive().default(500).describe("Largest allowed model.onnx size in MB."),
    maxLoadMs: z
      .number()
      .positive()
      .default(5000)
      .describe("Longest allowed onnxruntime-node session load time (ms)."),
    maxP95Ms: z.number().positive().default(100).describe("Largest allowed single-row p95 latency (ms)."),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;
export type CheckLimits = z.infer<typeof checkLimitsSchema>;
export const DEFAULT_LIMITS: CheckLimits = checkLimitsSchema.parse({});

/** Everything `train` needs, after flags > config > environment > defaults. */
export interface TrainSettings {
  data: string;
  textColumn: string;
  labelColumn: string;
  labels: string[] | undefined;
  labelMap: Record<string, string> | undefined;
  onEmpty: "error" | "drop";
  params: Record<string, unknown>;
  out: string;
  name: string;
  limits: CheckLimits;
}

/** Overrides from flags or action inputs; undefined means "not given". */
export type TrainFlags = {
  [K in Exclude<keyof TrainSettings, "limits" | "params">]?: TrainSettings[K] | undefined;
} & {
  limits?: { [K in keyof CheckLimits]?: number | undefined };
  params?: Record<string, unknown>;
};

/**
 * Layers the sources. `resolveConfigPath` makes config paths relative to the config file; flag paths
 * stay relative to the working directory.
 */
export function resolveTrainSettings(
  config: { train?: TrainConfig; validate?: CheckLimits },
  resolveConfigPath: (p: string) => string,
  flags: TrainFlags,
  env: NodeJS.ProcessEnv = process.env,
): Omit<TrainSettings, "data"> & { data: string | undefined } {
  const t = config.train ?? {};
  const defined = <T>(...values: (T | undefined)[]): T | undefined => values.find((v) => v !== undefined);
  return {
    data: defined(
      flags.data,
      t.data ? resolveConfigPath(t.data) : undefined,
      env.MODELSHIP_DATA || undefined,
    ),
    textColumn: defined(flags.textColumn, t.textColumn) ?? TRAIN_DEFAULTS.textColumn,
    labelColumn: defined(flags.labelColumn, t.labelColumn) ?? TRAIN_DEFAULTS.labelColumn,
    labels: defined(flags.labels, t.labels),
    labelMap: defined(flags.labelMap, t.labelMap),
    onEmpty: defined(flags.onEmpty, t.onEmpty) ?? "error",
    params: { ...(t.params ?? {}), ...(flags.params ?? {}) },
    out: defined(flags.out, t.out ? resolveConfigPath(t.out) : undefined) ?? TRAIN_DEFAULTS.out,
    name: defined(flags.name, t.name) ?? TRAIN_DEFAULTS.name,
    limits: { ...DEFAULT_LIMITS, ...(config.validate ?? {}), ...stripUndefined(flags.limits ?? {}) },
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
