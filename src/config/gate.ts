import { z } from "zod";

const unit = z.number().min(0).max(1);
const positive = z.number().positive();

/** Per-class F1 floor: one number for every class, or a map label → floor ("*" = every other class). */
const classFloorSchema = z.union([unit, z.record(z.string().min(1), unit)]);

/**
 * The metrics gate. Absolute floors always apply; regression limits apply only when a production
 * baseline exists (first deploy → absolute rules only). Every field has a default so `gate: {}` works.
 */
export const gatePolicySchema = z
  .object({
    /** Absolute floors on the candidate's test-split metrics. Unset = no floor. */
    minimum: z
      .object({
        accuracy: unit.optional().describe("Lowest allowed test accuracy. Unset: no floor."),
        macroF1: unit.optional().describe("Lowest allowed macro-averaged F1. Unset: no floor."),
        rocAuc: unit.optional().describe("Lowest allowed ROC AUC (binary models). Unset: no floor."),
        classF1: classFloorSchema
          .optional()
          .describe('Per-class F1 floor: one number for every class, or { label: floor, "*": rest }.'),
      })
      .strict()
      .default({})
      .describe("Absolute floors on the candidate's test-split metrics; always apply."),
    /** Largest allowed drop versus the production model (baseline − candidate). */
    maxDrop: z
      .object({
        accuracy: unit.default(0.005).describe("Largest allowed accuracy drop versus production."),
        macroF1: unit.default(0.01).describe("Largest allowed macro-F1 drop versus production."),
        rocAuc: unit.default(0.01).describe("Largest allowed ROC AUC drop versus production."),
        classF1: unit.default(0.01).describe("Largest allowed F1 drop for any single class."),
      })
      .strict()
      .default({ accuracy: 0.005, macroF1: 0.01, rocAuc: 0.01, classF1: 0.01 })
      .describe("Regression limits (baseline − candidate); only when a production model exists."),
    /**
     * How regressions are judged when both models can be scored on the same rows (paired): the
     * interval of each metric's difference and, for accuracy, McNemar's exact test.
     */
    compare: z
      .object({
        rule: z
          .enum(["significant", "point", "noninferior"])
          .default("significant")
          .describe(
            "significant: fail when the drop is statistically significant AND larger than maxDrop; point: fail when the point drop exceeds maxDrop; noninferior: fail unless the whole interval stays above −maxDrop.",
          ),
        confidence: z
          .number()
          .gt(0.5)
          .lt(1)
          .default(0.95)
          .describe("Confidence level of the intervals (significance level = 1 − confidence)."),
        resamples: z
          .number()
          .int()
          .min(100)
          .max(100_000)
          .default(2000)
          .describe("Paired bootstrap resamples over the evaluation rows."),
        seed: z.number().int().default(17).describe("Seed of the bootstrap (same seed, same interval)."),
        examples: z
          .number()
          .int()
          .min(0)
          .max(50)
          .default(5)
          .describe("Rows where the models disagree listed in the report."),
      })
      .strict()
      .default({ rule: "significant", confidence: 0.95, resamples: 2000, seed: 17, examples: 5 })
      .describe("Paired comparison: both models scored on the same rows, differences with intervals."),
    /** Runtime limits from the bundle's onnxruntime-node measurements. */
    runtime: z
      .object({
        maxP95Ms: positive.default(100).describe("Largest allowed single-row p95 latency (ms)."),
        maxSizeMb: positive.default(500).describe("Largest allowed model size (MB)."),
        maxSizeMB: positive
          .optional()
          .describe("Deprecated spelling of maxSizeMb (as in validate.maxSizeMb); wins when given."),
        maxLoadMs: positive.default(5000).describe("Longest allowed session load time (ms)."),
      })
      .strict()
      .default({ maxP95Ms: 100, maxSizeMb: 500, maxLoadMs: 5000 })
      .describe("Runtime limits from the bundle's onnxruntime-node measurements."),
    /** Re-run the bundle's golden examples under onnxruntime-node and require the recorded output. */
    goldenParity: z
      .boolean()
      .default(true)
      .describe(
        "Re-run the bundle's golden examples under onnxruntime-node and require the recorded output.",
      ),
    /** Largest allowed |probability − expected| for golden parity. */
    goldenTolerance: z
      .number()
      .positive()
      .max(0.5)
      .default(1e-4)
      .describe("Largest allowed |probability − expected| for golden parity."),
  })
  .strict();

export type GatePolicy = z.infer<typeof gatePolicySchema>;
export type GatePolicyInput = z.input<typeof gatePolicySchema>;

export const defaultGatePolicy: GatePolicy = gatePolicySchema.parse({});
