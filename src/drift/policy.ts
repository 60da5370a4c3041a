import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { UserError } from "../util/errors.js";
import { DEFAULT_WINDOW, thresholdsSchema } from "./stats.js";

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

export function parseDriftPolicy(value: unknown, where: string): DriftPolicy {
  const parsed = driftPolicySchema.safeParse(value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = ["drift", ...issue.path.map(String)].join(".");
    throw new UserError(`${where}: ${key}: ${issue.message}`, { hint: 'see README "Drift"' });
  }
  return parsed.data;
}

/** A standalone policy file, or a modelship.yaml whose `drift:` section holds it. */
export async function loadDriftPolicy(path: string | undefined): Promise<DriftPolicy> {
  if (!path) return defaultDriftPolicy;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read drift policy ${path}: ${code === "ENOENT" ? "no such file" : code}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UserError(`drift policy ${path} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return defaultDriftPolicy;
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new UserError(`drift policy ${path} must be a YAML mapping`);
  const record = doc as Record<string, unknown>;
  const standalone = Object.keys(record).some((k) => k in driftPolicySchema.shape);
  return parseDriftPolicy("drift" in record ? record.drift : standalone ? record : {}, path);
}
