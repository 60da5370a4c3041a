import { z } from "zod";

/**
 * The model bundle contract: `<name>-<version>/model.json` next to `model.onnx`.
 * Everything downstream (server, image labels, gate, canary analysis, drift) reads this file,
 * so every change here bumps BUNDLE_SCHEMA_VERSION and stays backward readable.
 */
export const BUNDLE_SCHEMA_VERSION = 1;
export const MODEL_FILE = "model.onnx";
export const CARD_FILE = "model.json";

const probability = z.number().min(0).max(1);
const finite = z.number().finite();

/** Sortable, unique, docker-tag safe: `YYYYMMDD.HHMMSS-<8 hex of model sha256>`. */
export const versionSchema = z
  .string()
  .regex(/^\d{8}\.\d{6}-[0-9a-f]{8}$/, "version must look like 20261122.031500-ab12cd34");

export const tensorSpecSchema = z.object({
  name: z.string().min(1),
  dtype: z.enum(["string", "float32", "float64", "int64", "int32"]),
  /** Dimensions; a string (e.g. "N") marks a dynamic dimension. */
  shape: z.array(z.union([z.number().int().nonnegative(), z.string()])),
});

export const ioSignatureSchema = z.object({
  task: z.enum(["text-classification", "tabular-classification"]),
  inputs: z.array(tensorSpecSchema).min(1),
  outputs: z.array(tensorSpecSchema).min(1),
  /** Output holding class probabilities [N, C] (column order = labels). */
  probabilitiesOutput: z.string(),
  /** Output holding the predicted label [N], when the graph has one. */
  labelOutput: z.string().optional(),
  labels: z.array(z.string().min(1)).min(2),
  /** Tabular models: CSV columns fed, in order, as the float input's last dimension. */
  featureColumns: z.array(z.string()).optional(),
  /**
   * How the user's labels are typed (packaged models): "int64" labels (scikit-learn integer classes)
   * are answered as JSON numbers by `POST /predict`. Absent = strings.
   */
  labelType: z.enum(["string", "int64"]).optional(),
});

export const classMetricsSchema = z.object({
  precision: finite,
  recall: finite,
  f1: finite,
  support: z.number().int().nonnegative(),
});

export const metricsSchema = z.object({
  accuracy: probability,
  macroF1: probability,
  /** Binary tasks only: AUC of the second label's probability (labels[1] is the positive class). */
  rocAuc: probability.optional(),
  classes: z.record(z.string(), classMetricsSchema),
  confusionMatrix: z.object({
    /** Row = true label, column = predicted label, both in `labels` order. */
    labels: z.array(z.string()),
    matrix: z.array(z.array(z.number().int().nonnegative())),
  }),
  testRows: z.number().int().nonnegative(),
  cv: z
    .object({
      folds: z.number().int().min(2),
      accuracy: z.object({ mean: finite, std: finite }),
      macroF1: z.object({ mean: finite, std: finite }),
    })
    .optional(),
});

export const runtimeSchema = z.object({
  onnxruntimeVersion: z.string(),
  fileSizeBytes: z.number().int().positive(),
  loadMs: finite,
  singleRowP50Ms: finite,
  singleRowP95Ms: finite,
  batch64RowsPerSec: finite,
});

export const histogramSchema = z.object({
  /** Bin edges, length = counts.length + 1, ascending. */
  edges: z.array(finite).min(2),
  counts: z.array(z.number().int().nonnegative()),
});

/**
 * Tabular models: one input feature as observed on the reference data (the feature schema). The
 * server checks requests against it (range guard) and drift compares live values with `histogram`.
 */
export const featureSpecSchema = z.object({
  name: z.string().min(1),
  dtype: z.enum(["float32", "float64"]),
  min: finite,
  max: finite,
  mean: finite,
  std: finite,
  quantiles: z.object({
    p01: finite,
    p05: finite,
    p25: finite,
    p50: finite,
    p75: finite,
    p95: finite,
    p99: finite,
  }),
  /** Reference histogram for per-feature PSI: decile edges of the reference data (ties merged). */
  histogram: histogramSchema,
});

/** What "normal" looks like on the test split: baseline for canary quality checks and drift. */
export const referenceSchema = z.object({
  rows: z.number().int().positive(),
  /** Share of predictions per label (sums to 1). */
  classMix: z.record(z.string(), probability),
  /** Histogram of the predicted class's probability ("confidence"), 10 equal bins on [0, 1]. */
  scoreHistogram: histogramSchema,
  /** Text models: histogram of input length in characters. */
  inputLengthHistogram: histogramSchema.optional(),
  /** Tabular models packaged by `modelship package`: the feature schema, in input order. */
  features: z.array(featureSpecSchema).optional(),
  /** Where the reference came from when not the evaluation split (`modelship package --reference`). */
  source: z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
});

export const goldenExampleSchema = z.object({
  /** Raw text for text models, feature vector for tabular models. */
  input: z.union([z.string(), z.array(finite)]),
  expected: z.object({
    label: z.string(),
    probabilities: z.array(probability),
  }),
});

export const modelCardSchema = z.object({
  schemaVersion: z.literal(BUNDLE_SCHEMA_VERSION),
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "name: lower-case letters, digits, '.', '_' or '-'"),
  version: versionSchema,
  createdAt: z.iso.datetime(),
  git: z.object({ commit: z.string().regex(/^[0-9a-f]{40}$/), dirty: z.boolean() }).nullable(),
  model: z.object({
    file: z.literal(MODEL_FILE),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    sizeBytes: z.number().int().positive(),
  }),
  io: ioSignatureSchema,
  dataset: z.object({
    path: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    textColumn: z.string().optional(),
    labelColumn: z.string(),
    rows: z.object({
      total: z.number().int().nonnegative(),
      used: z.number().int().nonnegative(),
      dropped: z.number().int().nonnegative(),
      train: z.number().int().nonnegative(),
      test: z.number().int().nonnegative(),
    }),
    classCounts: z.record(z.string(), z.number().int().nonnegative()),
  }),
  training: z
    .object({
      trainer: z.string(),
      seed: z.number().int(),
      durationMs: finite,
      params: z.record(z.string(), z.unknown()),
    })
    .nullable(),
  /**
   * Bundles made by `modelship package` from an ONNX file trained elsewhere: the original file, what
   * was changed to serve it (ZipMap removed, Softmax added, locale) and the measured parity, and any
   * corrections that make it agree with the Python model.
   */
  origin: z
    .object({
      kind: z.literal("packaged"),
      file: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      producer: z.string(),
      scores: z.enum(["probabilities", "logits"]),
      transforms: z.array(z.string()),
      /**
       * Max |served − original| probability over every evaluation row, for the `transforms` above
       * (they only make the graph servable and leave its outputs alone).
       */
      parity: finite,
      parityRows: z.number().int().nonnegative(),
      /**
       * Changes that do alter outputs, made so the bundle predicts what the Python model predicts
       * (skl2onnx text graphs tokenize unlike scikit-learn), and what they changed on the evaluation
       * rows against the exported graph. Absent when nothing needed correcting.
       */
      corrections: z
        .object({
          reason: z.string(),
          transforms: z.array(z.string()).min(1),
          rows: z.number().int().nonnegative(),
          /** Rows whose predicted label differs from the exported graph's. */
          labelsChanged: z.number().int().nonnegative(),
          /** Rows with any probability different from the exported graph's. */
          rowsChanged: z.number().int().nonnegative(),
          maxAbsDelta: finite,
          accuracyBefore: finite,
          accuracyAfter: finite,
        })
        .optional(),
    })
    .optional(),
  metrics: metricsSchema,
  runtime: runtimeSchema,
  golden: z.array(goldenExampleSchema).min(20),
  reference: referenceSchema,
});

export type TensorSpec = z.infer<typeof tensorSpecSchema>;
export type IoSignature = z.infer<typeof ioSignatureSchema>;
export type Metrics = z.infer<typeof metricsSchema>;
export type RuntimeFigures = z.infer<typeof runtimeSchema>;
export type Histogram = z.infer<typeof histogramSchema>;
export type Reference = z.infer<typeof referenceSchema>;
export type GoldenExample = z.infer<typeof goldenExampleSchema>;
export type FeatureSpec = z.infer<typeof featureSpecSchema>;
export type ModelCard = z.infer<typeof modelCardSchema>;
