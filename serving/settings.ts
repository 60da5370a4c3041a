import { availableParallelism } from "node:os";
import { z } from "zod";
import { UserError } from "../src/util/errors.js";

/**
 * Everything the server can be told, from flags (CLI) or env (container image). One schema so the
 * CLI, the image and the workers agree; workers receive the parsed settings as JSON in
 * MODELSHIP_SERVE_SETTINGS.
 */
export const serveSettingsSchema = z.object({
  modelDir: z.string().min(1),
  host: z.string().min(1).default("0.0.0.0"),
  port: z.number().int().min(0).max(65535).default(8080),
  workers: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(() => availableParallelism()),
  /** After SIGTERM: keep serving this long with readiness false, so the load balancer notices. */
  drainGraceMs: z.number().int().min(0).default(3000),
  /** Hard bound on shutdown after the grace period (in-flight requests get this long to finish). */
  shutdownTimeoutMs: z.number().int().min(100).default(10_000),
  bodyLimitBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  maxTextChars: z.number().int().min(1).default(10_000),
  maxBatchTexts: z.number().int().min(1).default(256),
  /**
   * Requests that arrive in the same event-loop turn share one model run of up to this many rows
   * (texts or feature rows); 1 runs each request alone. Nothing waits for company.
   */
  coalesceRows: z.number().int().min(1).max(4096).default(64),
  /** Whole-request receive timeout; slow clients get 408 instead of holding a worker's socket. */
  requestTimeoutMs: z.number().int().min(1000).default(30_000),
  headersTimeoutMs: z.number().int().min(1000).default(10_000),
  /** Longer than HAProxy's idle server-connection reuse so the proxy, not us, closes idle ones. */
  keepAliveTimeoutMs: z.number().int().min(1000).default(65_000),
  maxHeaderBytes: z
    .number()
    .int()
    .min(1024)
    .default(16 * 1024),
  goldenTolerance: z.number().positive().default(1e-4),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** One log line per request (id, route, status, ms — never the body). */
  accessLog: z.boolean().default(true),
  /**
   * Share of requests that get an access-log line (0–1). The image sets 0.01: at thousands of
   * requests a second one line each fills the engine's log; the metrics count every request anyway.
   */
  accessLogSample: z.number().min(0).max(1).default(1),
  /** TESTING ONLY: answer this fraction of predict/infer requests with 500. */
  chaosErrorRate: z.number().min(0).max(1).default(0),
  /**
   * Tabular `/predict`: a feature outside the range seen in the bundle's reference data is let
   * through ("off"), answered with a warning ("warn"), or refused with 400 ("reject").
   */
  rangeGuard: z.enum(["off", "warn", "reject"]).default("warn"),
});

export type ServeSettings = z.infer<typeof serveSettingsSchema>;
export type ServeSettingsInput = z.input<typeof serveSettingsSchema>;

/** Env variable → setting. The image is configured only through these. */
export const SETTINGS_ENV = {
  modelDir: "MODELSHIP_MODEL_DIR",
  host: "HOST",
  port: "PORT",
  workers: "MODELSHIP_WORKERS",
  drainGraceMs: "MODELSHIP_DRAIN_GRACE_MS",
  shutdownTimeoutMs: "MODELSHIP_SHUTDOWN_TIMEOUT_MS",
  bodyLimitBytes: "MODELSHIP_BODY_LIMIT_BYTES",
  maxTextChars: "MODELSHIP_MAX_TEXT_CHARS",
  maxBatchTexts: "MODELSHIP_MAX_BATCH_TEXTS",
  coalesceRows: "MODELSHIP_COALESCE_ROWS",
  requestTimeoutMs: "MODELSHIP_REQUEST_TIMEOUT_MS",
  headersTimeoutMs: "MODELSHIP_HEADERS_TIMEOUT_MS",
  keepAliveTimeoutMs: "MODELSHIP_KEEPALIVE_TIMEOUT_MS",
  maxHeaderBytes: "MODELSHIP_MAX_HEADER_BYTES",
  goldenTolerance: "MODELSHIP_GOLDEN_TOLERANCE",
  logLevel: "MODELSHIP_LOG_LEVEL",
  accessLog: "MODELSHIP_ACCESS_LOG",
  accessLogSample: "MODELSHIP_ACCESS_LOG_SAMPLE",
  chaosErrorRate: "MODELSHIP_CHAOS_ERROR_RATE",
  rangeGuard: "MODELSHIP_RANGE_GUARD",
} as const satisfies Record<keyof ServeSettings, string>;

const numericKeys = new Set<keyof ServeSettings>([
  "port",
  "workers",
  "drainGraceMs",
  "shutdownTimeoutMs",
  "bodyLimitBytes",
  "maxTextChars",
  "maxBatchTexts",
  "coalesceRows",
  "requestTimeoutMs",
  "headersTimeoutMs",
  "keepAliveTimeoutMs",
  "maxHeaderBytes",
  "goldenTolerance",
  "accessLogSample",
  "chaosErrorRate",
]);

function fromEnvValue(key: keyof ServeSettings, raw: string): unknown {
  if (numericKeys.has(key)) return raw.trim() === "" ? Number.NaN : Number(raw);
  if (key === "accessLog") {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    return raw;
  }
  return raw;
}

/** Reads settings from env, then applies explicit overrides (CLI flags win over env). */
export function resolveSettings(
  overrides: Partial<ServeSettingsInput> = {},
  env: NodeJS.ProcessEnv = process.env,
): ServeSettings {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(SETTINGS_ENV) as [keyof ServeSettings, string][]) {
    const value = env[name];
    if (value !== undefined && value !== "") raw[key] = fromEnvValue(key, value);
  }
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) raw[key] = value;
  if (raw.modelDir === undefined)
    throw new UserError("no model bundle given", {
      hint: `pass --model <bundle dir> or set ${SETTINGS_ENV.modelDir}`,
    });
  const parsed = serveSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? "");
    const env = SETTINGS_ENV[key as keyof ServeSettings];
    throw new UserError(`invalid server setting ${key}${env ? ` (${env})` : ""}: ${issue.message}`);
  }
  return parsed.data;
}
