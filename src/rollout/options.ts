import { z } from "zod";
import { ExitCode, UserError } from "../util/errors.js";
import { FAST_SETTINGS, parseDuration, type RolloutSettings, rolloutSettingsSchema } from "./settings.js";

/** Flags shared by `deploy`, `rollback` and the actions, as strings (CLI / action inputs); named in src/settings/rollout.ts. */
export interface RolloutFlags {
  steps?: string;
  interval?: string;
  shadow?: string;
  fast?: boolean;
  maxExtensions?: string;
  failureThreshold?: string;
  allowNoData?: boolean;
  skipSmoke?: boolean;
  readyTimeout?: string;
  drainTimeout?: string;
  standbyWindow?: string;
  keepImages?: string;
  memory?: string;
  cpus?: string;
  workers?: string;
  namePrefix?: string;
  maxErrorRate?: string;
  maxP95Ms?: string;
  maxP99Ms?: string;
  latencyFactor?: string;
  maxClassShift?: string;
  maxPsi?: string;
  minRequests?: string;
  minPredictions?: string;
}

function num(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UserError(`${flag} must be a number (got '${value}')`);
  return n;
}

function dur(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new UserError(`${flag}: ${(err as Error).message}`);
  }
}

const defined = <T extends object>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Flags → validated settings; `--fast` sets demo speeds that explicit flags still override. */
export function settingsFromFlags(flags: RolloutFlags): RolloutSettings {
  const base = flags.fast ? FAST_SETTINGS : {};
  const steps =
    flags.steps === undefined
      ? undefined
      : flags.steps.split(",").map((s) => {
          const n = Number(s.trim().replace(/%$/, ""));
          if (!Number.isInteger(n)) throw new UserError(`--steps: '${s}' is not a whole percentage`);
          return n;
        });
  const raw = {
    ...base,
    ...defined({
      steps,
      intervalMs: dur("--interval", flags.interval),
      shadowMs: dur("--shadow", flags.shadow),
      maxExtensions: num("--max-extensions", flags.maxExtensions),
      failureThreshold: num("--failure-threshold", flags.failureThreshold),
      allowNoData: flags.allowNoData,
      skipSmoke: flags.skipSmoke,
      readyTimeoutMs: dur("--ready-timeout", flags.readyTimeout),
      drainTimeoutMs: dur("--drain-timeout", flags.drainTimeout),
      standbyWindowMs: dur("--standby-window", flags.standbyWindow),
      keepImages: num("--keep-images", flags.keepImages),
    }),
    analysis: {
      ...(base.analysis ?? {}),
      ...defined({
        maxErrorRate: num("--max-error-rate", flags.maxErrorRate),
        maxP95Ms: num("--max-p95-ms", flags.maxP95Ms),
        maxP99Ms: num("--max-p99-ms", flags.maxP99Ms),
        latencyFactor: num("--latency-factor", flags.latencyFactor),
        maxClassShift: num("--max-class-shift", flags.maxClassShift),
        maxPsi: num("--max-psi", flags.maxPsi),
        minRequests: num("--min-requests", flags.minRequests),
        minPredictions: num("--min-predictions", flags.minPredictions),
      }),
    },
    container: defined({
      memory: flags.memory,
      cpus: num("--cpus", flags.cpus),
      workers: num("--workers", flags.workers),
      namePrefix: flags.namePrefix,
    }),
  };
  const parsed = rolloutSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(
      `invalid rollout settings: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      { exitCode: ExitCode.usage },
    );
  }
  return parsed.data;
}

/** `KEY=VALUE` pairs (repeatable --env). */
export function parseEnvPairs(pairs: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(p);
    if (!m) throw new UserError(`--env '${p}' must look like KEY=VALUE`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

export const envPairsSchema = z.record(z.string(), z.string());
