import { z } from "zod";
import type { DeployConfig } from "../config/deploy.js";
import { FAST_SHADOW_STEP_MS, SHADOW_STEP_MS } from "../shadow/compare.js";
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

/** The steps of a rollout: an optional leading shadow step, then the canary percentages. */
export interface StepsPlan {
  shadow: boolean;
  steps: number[];
}

/**
 * `shadow,5,25,50,100` (a flag, an input, or modelship.yaml's `deploy.steps` as text or a list) → the
 * plan. Pure; `where` names the source in the one-line error. Order and range of the percentages are
 * the settings schema's (strictly ascending, 1..100).
 */
export function parseSteps(value: string | readonly (string | number)[], where: string): StepsPlan {
  const tokens = typeof value === "string" ? value.split(",") : value.map(String);
  const text = tokens.map((t) => t.trim()).join(",");
  let shadow = false;
  const steps: number[] = [];
  tokens.forEach((raw, i) => {
    const token = raw.trim();
    if (/^shadow$/i.test(token)) {
      if (shadow) throw new UserError(`${where}: 'shadow' is given twice in '${text}'`);
      if (i !== 0)
        throw new UserError(
          `${where}: 'shadow' must be the first step, before any traffic moves (got '${text}'; e.g. shadow,5,25,50,100)`,
        );
      shadow = true;
      return;
    }
    const n = Number(token.replace(/%$/, ""));
    if (token === "" || !Number.isInteger(n))
      throw new UserError(`${where}: '${token}' is neither a whole percentage nor 'shadow' (in '${text}')`);
    steps.push(n);
  });
  if (steps.length === 0)
    throw new UserError(
      `${where}: '${text}' has no canary percentages${shadow ? " after shadow" : ""} (e.g. shadow,5,25,50,100)`,
    );
  return { shadow, steps };
}

/** modelship.yaml's `deploy:` section and the file it came from (for error messages). */
export interface DeployFileSettings {
  deploy: DeployConfig;
  file: string;
}

function configDuration(where: string, value: string | number): number {
  try {
    return parseDuration(String(value));
  } catch (err) {
    throw new UserError(`${where}: ${(err as Error).message}`);
  }
}

/**
 * Flags → validated settings; `--fast` sets demo speeds that explicit flags still override.
 * `config` (modelship.yaml `deploy:`) applies under the flags: `--steps` replaces `deploy.steps`,
 * `--shadow` replaces `deploy.shadow`'s duration. A shadow step runs when the steps start with
 * `shadow` (for the given duration, else SHADOW_STEP_MS / FAST_SHADOW_STEP_MS) or a duration is given.
 */
export function settingsFromFlags(flags: RolloutFlags, config?: DeployFileSettings): RolloutSettings {
  const base = flags.fast ? FAST_SETTINGS : {};
  const file = config?.deploy ?? {};
  const at = (key: string) => `${config?.file ?? "modelship.yaml"} deploy.${key}`;
  const stepsGiven =
    flags.steps !== undefined
      ? { value: flags.steps as string | readonly (string | number)[], where: "--steps" }
      : file.steps !== undefined
        ? { value: file.steps, where: at("steps") }
        : undefined;
  const plan = stepsGiven ? parseSteps(stepsGiven.value, stepsGiven.where) : undefined;
  const fileShadow = file.shadow;
  const { duration: fileDuration, ...fileThresholds } =
    typeof fileShadow === "object" ? fileShadow : { duration: fileShadow };
  const duration =
    flags.shadow !== undefined
      ? { ms: dur("--shadow", flags.shadow)!, where: `--shadow ${flags.shadow}` }
      : fileDuration !== undefined
        ? { ms: configDuration(at("shadow"), fileDuration), where: `${at("shadow")} ${fileDuration}` }
        : undefined;
  if (plan?.shadow && duration?.ms === 0)
    throw new UserError(
      `${stepsGiven!.where} start with shadow but ${duration.where} turns the shadow step off: drop one of them`,
    );
  const shadowMs =
    duration?.ms ?? (plan?.shadow ? (flags.fast ? FAST_SHADOW_STEP_MS : SHADOW_STEP_MS) : undefined);
  const steps = plan?.steps;
  const raw = {
    ...base,
    ...defined({
      steps,
      intervalMs: dur("--interval", flags.interval),
      shadowMs,
      maxExtensions: num("--max-extensions", flags.maxExtensions),
      failureThreshold: num("--failure-threshold", flags.failureThreshold),
      allowNoData: flags.allowNoData,
      skipSmoke: flags.skipSmoke,
      readyTimeoutMs: dur("--ready-timeout", flags.readyTimeout),
      drainTimeoutMs: dur("--drain-timeout", flags.drainTimeout),
      standbyWindowMs: dur("--standby-window", flags.standbyWindow),
      keepImages: num("--keep-images", flags.keepImages),
    }),
    shadow: { ...(base.shadow ?? {}), ...fileThresholds },
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
