import { z } from "zod";
import { deployConfigSchema } from "./deploy.js";
import { driftPolicySchema } from "./drift.js";
import { gatePolicySchema } from "./gate.js";
import { packageConfigSchema } from "./package.js";
import { checkLimitsSchema, trainConfigSchema } from "./train.js";

/**
 * modelship.yaml. Each area owns one optional section; adding an area is one line here
 * (`<section>: <area>ConfigSchema.optional(),`). `.strict()` everywhere: a typo is an error that names
 * the key's path, never a silently ignored setting.
 */
export const configSchema = z
  .object({
    train: trainConfigSchema.optional().describe("Training: data, columns, labels, trainer params, output."),
    validate: checkLimitsSchema
      .optional()
      .describe("Production-checklist limits checked by train and validate."),
    gate: gatePolicySchema.optional().describe("Metrics gate of a candidate against the production model."),
    drift: driftPolicySchema.optional().describe("Drift check and the retraining it triggers."),
    package: packageConfigSchema
      .optional()
      .describe("Packaging an ONNX classifier trained elsewhere (modelship package)."),
    deploy: deployConfigSchema
      .optional()
      .describe(
        "Rollout plan of modelship deploy / canary-deploy: steps (with a leading shadow step) and shadow.",
      ),
  })
  .strict();

export type ModelshipConfig = z.infer<typeof configSchema>;
export const CONFIG_FILE = "modelship.yaml";
