import { z } from "zod";
import { DEFAULT_WINDOW, thresholdsSchema } from "../contracts/drift.js";

/**
 * The drift policy the check applies (modelship.yaml `drift:` or a standalone file). Thresholds given
 * here override the server's; `sustain` is how many consecutive over-threshold checks confirm drift.
 */
export const driftPolicySchema = z
  .object({
    /** Consecutive checks with a full window over a threshold before drift is confirmed. */
    sustain: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe("Consecutive over-threshold checks (full window) before drift is confirmed."),
    thresholds: thresholdsSchema
      .partial()
      .strict()
      .optional()
      .describe("Alarm thresholds; each given one overrides the server's."),
    /** Window size when computing from a prediction log (the server's own window applies for --url). */
    window: z
      .number()
      .int()
      .min(10)
      .default(DEFAULT_WINDOW)
      .describe("Window size when computing from a prediction log (--url uses the server's window)."),
    retrain: z
      .object({
        /** Workflow dispatched when drift is confirmed (once per model version). */
        workflow: z
          .string()
          .min(1)
          .default("deploy.yml")
          .describe("Workflow dispatched when drift is confirmed (once per model version)."),
        enabled: z.boolean().default(true).describe("Dispatch the retrain workflow on confirmed drift."),
      })
      .strict()
      .default({ workflow: "deploy.yml", enabled: true })
      .describe("Retraining triggered by confirmed drift."),
  })
  .strict();
export type DriftPolicy = z.infer<typeof driftPolicySchema>;
export const defaultDriftPolicy: DriftPolicy = driftPolicySchema.parse({});
