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

/**
 * A version's shadow step as judged (src/shadow/compare.ts), kept so `status` shows the verdict after
 * the fact. No request texts: the disagreeing examples live only in the deploy's own output.
 */
export const shadowRecordSchema = z.object({
  verdict: z.enum(["pass", "fail", "inconclusive"]),
  startedAt: isoTime,
  endedAt: isoTime,
  durationMs: z.number().nonnegative(),
  extensions: z.number().int().nonnegative(),
  /** Mirrored requests (answered + failed) and pairs both models answered. */
  attempts: z.number().int().nonnegative(),
  pairs: z.number().int().nonnegative(),
  agreements: z.number().int().nonnegative(),
  agreement: z.number().min(0).max(1).nullable(),
  agreementCi: z.object({ low: z.number(), high: z.number() }).nullable(),
  /** stable label → candidate label → count. */
  flips: z.record(z.string(), z.record(z.string(), z.number().int().nonnegative())),
  meanAbsDelta: z.number().nullable(),
  p95AbsDelta: z.number().nullable(),
  candidateErrors: z.number().int().nonnegative(),
  candidateP50Ms: z.number().nullable(),
  candidateP95Ms: z.number().nullable(),
  stableP95Ms: z.number().nullable(),
  checks: z.array(checkResultSchema),
  summary: z.string(),
});
export type ShadowRecord = z.infer<typeof shadowRecordSchema>;

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
  image: z.object({
    ref: z.string().min(1),
    digest: z.string().nullable(),
    /** Built by a deploy of this state dir (`--model`): only such images are ever pruned. */
    builtHere: z.boolean().optional(),
  }),
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
  /** The shadow step's verdict (deploys with a shadow step only). */
  shadow: shadowRecordSchema.optional(),
});
export type VersionEntry = z.infer<typeof versionEntrySchema>;

export const operationKindSchema = z.enum(["deploy", "rollback", "repair"]);
export type OperationKind = z.infer<typeof operationKindSchema>;

/**
 * Where a running deploy/rollback is: a typed value, advanced by one function per phase and written to
 * the ledger before the phase acts, so a crash leaves the exact point for repair to resume or unwind
 * from (see rollout/plan.ts). `step` (below) is its human rendering.
 */
export const phaseSchema = z.discriminatedUnion("name", [
  z.object({ name: z.literal("started") }),
  z.object({ name: z.literal("reconciling") }),
  z.object({ name: z.literal("building"), version: z.string() }),
  /** About to start `container` (its name): a crash from here leaves at most that container behind. */
  z.object({ name: z.literal("starting"), version: z.string(), container: z.string() }),
  z.object({ name: z.literal("verifying"), version: z.string() }),
  z.object({ name: z.literal("attaching"), version: z.string() }),
  /** The edge mirrors live requests to `version` (weight 0); users get only stable's answers. */
  z.object({ name: z.literal("shadow"), version: z.string() }),
  z.object({
    name: z.literal("canary"),
    version: z.string(),
    step: z.number().int(),
    weight: z.number().int(),
  }),
  /** The commit point: from here the ledger names `version` stable; repair resumes instead of unwinding. */
  z.object({ name: z.literal("switching"), version: z.string(), from: z.string().nullable() }),
  z.object({ name: z.literal("draining"), version: z.string() }),
  z.object({ name: z.literal("retiring") }),
  z.object({ name: z.literal("aborting"), version: z.string(), reason: z.string() }),
]);
export type PhaseRecord = z.infer<typeof phaseSchema>;

/** How a phase reads in `status` and history ("weight 25 of v2"). */
export function describePhase(p: PhaseRecord): string {
  switch (p.name) {
    case "started":
      return "started";
    case "reconciling":
      return "reconciling with the host";
    case "building":
      return `building the image of ${p.version}`;
    case "starting":
      return `starting container ${p.container}`;
    case "verifying":
      return `verifying ${p.version} (model identity, smoke test)`;
    case "attaching":
      return `attaching ${p.version} to the router`;
    case "shadow":
      return `shadow step of ${p.version} (mirrored requests, weight 0)`;
    case "canary":
      return `weight ${p.weight}`;
    case "switching":
      return `switching all traffic to ${p.version}`;
    case "draining":
      return `draining ${p.version}`;
    case "retiring":
      return "retiring old versions";
    case "aborting":
      return `aborting ${p.version}`;
  }
}

/** The operation in progress; still present after a crash, which is how `status` can explain it. */
export const operationSchema = z.object({
  id: z.string(),
  kind: operationKindSchema,
  pid: z.number().int(),
  host: z.string(),
  startedAt: isoTime,
  /** Last step reached, for humans ("starting container …", "weight 25 for …"): describePhase(phase). */
  step: z.string(),
  /** Last phase reached (absent in ledgers written before phases were typed). */
  phase: phaseSchema.optional(),
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
