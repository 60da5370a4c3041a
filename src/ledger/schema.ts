import { z } from "zod";

/**
 * The deploy ledger: the host's memory of what runs where. One JSON file in the state dir, written
 * atomically under the operation lock; read back through this schema so a hand-edited or torn file
 * becomes a clear error instead of a wrong decision.
 */
export const LEDGER_SCHEMA_VERSION = 1;

export const roleSchema = z.enum(["stable", "canary", "standby", "retired", "failed"]);
export type Role = z.infer<typeof roleSchema>;

const isoTime = z.iso.datetime();

export const checkResultSchema = z.object({
  name: z.string(),
  /** "pass" | "fail" | "inconclusive" (not enough data to judge). */
  status: z.enum(["pass", "fail", "inconclusive"]),
  value: z.number().nullable(),
  threshold: z.number().nullable(),
  message: z.string(),
});
export type CheckResultRecord = z.infer<typeof checkResultSchema>;

export const analysisRecordSchema = z.object({
  step: z.number().int().nonnegative(),
  weight: z.number().int().min(0).max(100),
  startedAt: isoTime,
  endedAt: isoTime,
  verdict: z.enum(["pass", "fail", "inconclusive"]),
  /** Requests the canary answered in the interval (HAProxy's count). */
  canaryRequests: z.number().int().nonnegative(),
  canaryErrors: z.number().int().nonnegative(),
  stableRequests: z.number().int().nonnegative(),
  checks: z.array(checkResultSchema),
});
export type AnalysisRecord = z.infer<typeof analysisRecordSchema>;

/** How a serving container was started: what `host repair` needs to recreate it identically. */
export const containerRunSchema = z.object({
  containerPort: z.number().int().min(1).max(65535),
  memory: z.string(),
  cpus: z.number().positive(),
  restart: z.enum(["no", "always", "unless-stopped", "on-failure"]),
  stopTimeoutSec: z.number().int().nonnegative(),
  /** Overrides of the engine's default hardening (tmpfs mounts, pids limit, log rotation). */
  hardening: z
    .object({
      tmpfs: z.record(z.string(), z.string()).optional(),
      pidsLimit: z.number().int().positive().optional(),
      logMaxSize: z.string().optional(),
      logMaxFiles: z.number().int().positive().optional(),
    })
    .optional(),
  env: z.record(z.string(), z.string()),
  labels: z.record(z.string(), z.string()),
});
export type ContainerRun = z.infer<typeof containerRunSchema>;

export const versionEntrySchema = z.object({
  version: z.string().min(1),
  image: z.object({ ref: z.string().min(1), digest: z.string().nullable() }),
  model: z.object({ name: z.string(), version: z.string(), sha256: z.string() }).nullable(),
  container: z
    .object({
      id: z.string(),
      name: z.string(),
      hostPort: z.number().int().positive(),
      /** Absent in ledgers written before it was recorded (repair then uses the default settings). */
      run: containerRunSchema.optional(),
    })
    .nullable(),
  role: roleSchema,
  weight: z.number().int().min(0).max(100),
  createdAt: isoTime,
  updatedAt: isoTime,
  promotedAt: isoTime.optional(),
  /** Warm standby is kept running until this time, then retired by the next operation. */
  standbyUntil: isoTime.optional(),
  retiredAt: isoTime.optional(),
  failedAt: isoTime.optional(),
  failureReason: z.string().optional(),
  analysis: z.array(analysisRecordSchema).default([]),
});
export type VersionEntry = z.infer<typeof versionEntrySchema>;

export const operationKindSchema = z.enum(["deploy", "rollback", "repair"]);
export type OperationKind = z.infer<typeof operationKindSchema>;

/** The operation in progress; still present after a crash, which is how `status` can explain it. */
export const operationSchema = z.object({
  id: z.string(),
  kind: operationKindSchema,
  pid: z.number().int(),
  host: z.string(),
  startedAt: isoTime,
  /** Last step reached ("starting candidate", "weight 25", ...). */
  step: z.string(),
  /** Version being deployed / rolled back to. */
  target: z.string().optional(),
  by: z.string().optional(),
});
export type Operation = z.infer<typeof operationSchema>;

export const historyEventSchema = z.object({
  at: isoTime,
  kind: z.enum(["deploy", "promote", "abort", "rollback", "retire", "interrupted", "repair", "restart"]),
  version: z.string().optional(),
  from: z.string().optional(),
  by: z.string().optional(),
  reason: z.string().optional(),
});
export type HistoryEvent = z.infer<typeof historyEventSchema>;

export const ledgerSchema = z.object({
  schemaVersion: z.literal(LEDGER_SCHEMA_VERSION),
  updatedAt: isoTime,
  versions: z.array(versionEntrySchema),
  operation: operationSchema.nullable(),
  history: z.array(historyEventSchema),
});
export type LedgerData = z.infer<typeof ledgerSchema>;

export function emptyLedger(now = new Date()): LedgerData {
  return {
    schemaVersion: LEDGER_SCHEMA_VERSION,
    updatedAt: now.toISOString(),
    versions: [],
    operation: null,
    history: [],
  };
}

/** Helpers that read the ledger the same way everywhere. */
export function byRole(ledger: LedgerData, role: Role): VersionEntry[] {
  return ledger.versions.filter((v) => v.role === role);
}

export function stableVersion(ledger: LedgerData): VersionEntry | undefined {
  return ledger.versions.find((v) => v.role === "stable");
}

export function findVersion(ledger: LedgerData, version: string): VersionEntry | undefined {
  return ledger.versions.find((v) => v.version === version);
}
