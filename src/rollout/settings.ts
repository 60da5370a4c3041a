import { z } from "zod";
import { analysisConfigSchema } from "../analysis/analysis.js";
import { shadowConfigSchema } from "../shadow/compare.js";

export const containerSettingsSchema = z.object({
  memory: z
    .string()
    .regex(/^\d+[kmg]?$/i, "memory like 512m or 1g")
    .default("512m"),
  cpus: z.number().positive().default(1),
  /** Engine restart policy: the container must outlive the CI job and come back after a crash. */
  restart: z.enum(["always", "unless-stopped", "on-failure"]).default("always"),
  /** Server worker processes per container. */
  workers: z.number().int().min(1).max(64).default(1),
  /** Port the server listens on inside the image. */
  port: z.number().int().min(1).max(65535).default(8080),
  /** Container names are `<prefix><version>-<8 hex of the state dir>` (two state dirs never share one). */
  namePrefix: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)
    .default("modelship-"),
});

export const rolloutSettingsSchema = z.object({
  /** Canary traffic percentages, ascending; reaching 100 is the promotion. */
  steps: z
    .array(z.number().int().min(1).max(100))
    .min(1)
    .default([5, 25, 50, 100])
    .refine((s) => s.every((w, i) => i === 0 || w > s[i - 1]!), "steps must be strictly ascending"),
  /** Analysis interval per step. */
  intervalMs: z.number().int().min(100).default(30_000),
  /** An inconclusive step (too little traffic) is extended this many times, then the rollout aborts. */
  maxExtensions: z.number().int().min(0).default(3),
  /** Failed analyses (at one step) that abort the rollout. */
  failureThreshold: z.number().int().min(1).default(1),
  readyTimeoutMs: z.number().int().positive().default(60_000),
  healthTimeoutMs: z.number().int().positive().default(20_000),
  drainTimeoutMs: z.number().int().positive().default(30_000),
  /** How long the previous stable stays running (weight 0) for an instant rollback. */
  standbyWindowMs: z
    .number()
    .int()
    .min(0)
    .default(24 * 3600_000),
  /** Images of this many most recent versions are kept; older ones are removed with their version. */
  keepImages: z.number().int().min(1).default(3),
  /** Skip the golden smoke test on the candidate's own port (drills only: the analysis still judges). */
  skipSmoke: z.boolean().default(false),
  /** Promote even when the analysis has no data (demo without traffic). */
  allowNoData: z.boolean().default(false),
  /**
   * Shadow step before any weight moves (0 = off): the edge mirrors live prediction requests to the
   * candidate this long, answers compared with stable's; a failing verdict aborts the rollout.
   */
  shadowMs: z.number().int().min(0).default(0),
  shadow: shadowConfigSchema.prefault({}),
  analysis: analysisConfigSchema.prefault({}),
  container: containerSettingsSchema.prefault({}),
});
export type RolloutSettings = z.infer<typeof rolloutSettingsSchema>;
export type RolloutSettingsInput = z.input<typeof rolloutSettingsSchema>;

/** Demo/test speed: short steps that still need real data before promoting. */
export const FAST_SETTINGS: RolloutSettingsInput = {
  intervalMs: 4000,
  maxExtensions: 5,
  drainTimeoutMs: 10_000,
  analysis: { minRequests: 20, minPredictions: 50 },
  shadow: { minPairs: 50 },
};

/** "30s", "500ms", "2m", "1h" or a plain number of seconds → ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: '${text}' (use e.g. 30s, 500ms, 2m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[unit as "ms" | "s" | "m" | "h"]);
}
