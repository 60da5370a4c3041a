import { z } from "zod";
import { driftPolicySchema } from "../drift/policy.js";
import { gatePolicySchema } from "../gate/policy.js";
import { checkLimitsSchema, trainConfigSchema } from "./train.js";

/**
 * modelship.yaml. Each area owns one optional section; adding an area is one line here
 * (`<section>: <area>ConfigSchema.optional(),`). `.strict()` everywhere: a typo is an error that names
 * the key's path, never a silently ignored setting.
 */
export const configSchema = z
  .object({
    train: trainConfigSchema.optional(),
    validate: checkLimitsSchema.optional(),
    gate: gatePolicySchema.optional(),
    drift: driftPolicySchema.optional(),
  })
  .strict();

export type ModelshipConfig = z.infer<typeof configSchema>;
export const CONFIG_FILE = "modelship.yaml";
