import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { z } from "zod";
import { readBundle } from "../bundle/read.js";
import type { DriftPolicy } from "../config/drift.js";
import { loadDriftPolicy } from "../config/load.js";
import { thresholdsSchema } from "../contracts/drift.js";
import { resolveStateDir } from "../ledger/ledger.js";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteJson } from "../util/fs.js";
import { addCounts, binOf, emptyCounts, layoutOf } from "./counts.js";
import { predictionLogRecordSchema } from "./log.js";
import { type DriftReport, driftReportSchema, evaluateDrift, type StatisticName } from "./stats.js";

export const DRIFT_STATE_FILE = "drift-state.json";

/** GET <url>/drift: the live window of a server, or of whichever server the edge routes to. */
export async function fetchDriftReport(url: string, timeoutMs = 10_000): Promise<DriftReport> {
  const target = `${url.replace(/\/+$/, "")}/drift`;
  let res: Response;
  try {
    res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new UserError(`cannot reach ${target}: ${(err as Error).message}`, {
      exitCode: ExitCode.environment,
      hint: "is the edge (or server) up? `modelship status` shows what serves",
    });
  }
  const body = await res.text();
  if (!res.ok) {
    throw new UserError(`${target} answered ${res.status}: ${body.slice(0, 200)}`, {
      exitCode: ExitCode.environment,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new UserError(`${target} did not answer JSON`, { exitCode: ExitCode.environment });
  }
  const parsed = driftReportSchema.safeParse(json);
  if (!parsed.success)
    throw new UserError(`${target} answered an unexpected drift report`, { exitCode: ExitCode.environment });
  return parsed.data;
}

/**
 * The same report from a prediction log (the server's JSONL, text or hashed): the newest `window`
 * records of the bundle's version, against that bundle's reference.
 */
export async function driftFromLog(
  logFile: string,
  bundleDir: string,
  policy: DriftPolicy,
): Promise<DriftReport> {
  const { card } = await readBundle(bundleDir, { verifyHash: false });
  const layout = layoutOf(card.reference, card.io.labels);
  const records = [];
  let seen = 0;
  // Newest first: the file, then its rotated predecessors (<file>.1, <file>.2, …).
  for (let k = 0; records.length < policy.window; k++) {
    const file = k === 0 ? logFile : `${logFile}.${k}`;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (k > 0 && code === "ENOENT") break;
      throw new UserError(`cannot read prediction log ${file}: ${code === "ENOENT" ? "no such file" : code}`);
    }
    const lines = text.split("\n");
    for (let i = lines.length - 1; i >= 0 && records.length < policy.window; i--) {
      if (lines[i]!.trim() === "") continue;
      seen++;
      let json: unknown;
      try {
        json = JSON.parse(lines[i]!);
      } catch {
        throw new UserError(`${file}:${i + 1}: not a JSON line`);
      }
      const r = predictionLogRecordSchema.safeParse(json);
      if (!r.success)
        throw new UserError(`${file}:${i + 1}: not a prediction log record (${r.error.issues[0]?.message})`);
      if (r.data.version === card.version) records.push(r.data);
    }
  }
  if (seen > 0 && records.length === 0)
    throw new UserError(`${logFile} has no predictions of ${card.name} ${card.version}`, {
      hint: "pass the bundle that served them with --model",
    });
  const counts = emptyCounts(layout);
  for (const r of records) {
    const one = emptyCounts(layout);
    one.n = 1;
    one.scoreBins[binOf(r.confidence, layout.scoreEdges)]!++;
    const c = card.io.labels.indexOf(r.label);
    if (c >= 0) one.classes[c]!++;
    if (r.length !== undefined && one.lengthBins.length > 0)
      one.lengthBins[binOf(r.length, layout.lengthEdges)]!++;
    one.tokens = r.tokens ?? 0;
    one.oovTokens = r.oov ?? 0;
    addCounts(counts, one);
  }
  const times = records.map((r) => Date.parse(r.t)).filter(Number.isFinite);
  return evaluateDrift({
    counts,
    reference: card.reference,
    labels: card.io.labels,
    model: { name: card.name, version: card.version },
    thresholds: { ...thresholdsSchema.parse({}), ...policy.thresholds },
    windowSize: policy.window,
    oldestAt: times.length ? new Date(Math.min(...times)) : undefined,
    newestAt: times.length ? new Date(Math.max(...times)) : undefined,
  });
}

/** Applies the policy's threshold overrides to a report (a server may run with other thresholds). */
export function applyPolicy(report: DriftReport, policy: DriftPolicy): DriftReport {
  const override: Partial<Record<StatisticName, number | undefined>> = {
    score_psi: policy.thresholds?.scorePsi,
    class_mix_distance: policy.thresholds?.classMixDistance,
    input_length_psi: policy.thresholds?.inputLengthPsi,
    oov_rate: policy.thresholds?.oovRate,
  };
  const statistics = report.statistics.map((s) => {
    const threshold = override[s.name] ?? s.threshold;
    return { ...s, threshold, over: report.full && s.value !== null && s.value > threshold };
  });
  return { ...report, statistics, drift: statistics.some((s) => s.over) };
}

const stateSchema = z.object({
  model: z.object({ name: z.string(), version: z.string() }).nullable(),
  /** Consecutive checks (full windows) over a threshold for this model version. */
  consecutive: z.number().int().nonnegative(),
  /** Version a retraining was already requested for (one request per drifting model). */
  retrainRequestedFor: z.string().nullable(),
  history: z.array(
    z.object({ at: z.string(), drift: z.boolean(), full: z.boolean(), over: z.array(z.string()) }),
  ),
});
export type DriftState = z.infer<typeof stateSchema>;
const HISTORY = 50;

export interface DriftCheck {
  report: DriftReport;
  over: StatisticName[];
  consecutive: number;
  sustain: number;
  /** Drift held for `sustain` consecutive checks. */
  confirmed: boolean;
  /** Confirmed and no retraining requested yet for this version. */
  retrain: boolean;
  stateFile: string;
}

/**
 * One check: updates the counter of consecutive drifting checks kept in `<stateDir>/drift-state.json`
 * (under a lock; the drift workflow runs on the host's self-hosted runner, so the file persists between
 * scheduled runs). A calm full window resets the counter; a not-yet-full window leaves it alone; a new
 * model version starts over.
 */
export async function recordCheck(
  report: DriftReport,
  policy: DriftPolicy,
  stateDir: string,
): Promise<DriftCheck> {
  await mkdir(stateDir, { recursive: true });
  const stateFile = join(stateDir, DRIFT_STATE_FILE);
  await writeFile(stateFile, "", { flag: "a" });
  const release = await lockfile.lock(stateFile, {
    stale: 30_000,
    retries: { retries: 20, minTimeout: 100 },
  });
  try {
    let state: DriftState = { model: null, consecutive: 0, retrainRequestedFor: null, history: [] };
    const raw = await readFile(stateFile, "utf8");
    if (raw.trim() !== "") {
      const parsed = stateSchema.safeParse(safeJson(raw));
      if (!parsed.success)
        throw new UserError(`${stateFile} is not a drift state file; move it away to start over`);
      state = parsed.data;
    }
    if (state.model?.version !== report.model.version) {
      state = { model: report.model, consecutive: 0, retrainRequestedFor: null, history: [] };
    }
    const over = report.statistics.filter((s) => s.over).map((s) => s.name);
    if (report.full) state.consecutive = report.drift ? state.consecutive + 1 : 0;
    const confirmed = state.consecutive >= policy.sustain;
    const retrain = confirmed && policy.retrain.enabled && state.retrainRequestedFor !== report.model.version;
    state.history = [
      ...state.history,
      { at: new Date().toISOString(), drift: report.drift, full: report.full, over },
    ].slice(-HISTORY);
    await atomicWriteJson(stateFile, state);
    return {
      report,
      over,
      consecutive: state.consecutive,
      sustain: policy.sustain,
      confirmed,
      retrain,
      stateFile,
    };
  } finally {
    await release();
  }
}

/** Records that retraining was requested for this version, so later checks do not request it again. */
export async function markRetrainRequested(check: DriftCheck): Promise<void> {
  const release = await lockfile.lock(check.stateFile, {
    stale: 30_000,
    retries: { retries: 20, minTimeout: 100 },
  });
  try {
    const state = stateSchema.parse(safeJson(await readFile(check.stateFile, "utf8")));
    state.retrainRequestedFor = check.report.model.version;
    await atomicWriteJson(check.stateFile, state);
  } finally {
    await release();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const fmt = (v: number | null) => (v === null ? "–" : v.toFixed(4));

/** Job summary / issue body: the figures, the counter, and what happens next. */
export function renderDriftMarkdown(check: DriftCheck, extra: { runUrl?: string } = {}): string {
  const r = check.report;
  const head = check.confirmed
    ? `### ⚠️ Drift confirmed for ${r.model.name} ${r.model.version}`
    : r.drift
      ? `### Drift suspected for ${r.model.name} ${r.model.version} (${check.consecutive}/${check.sustain} checks)`
      : `### No drift for ${r.model.name} ${r.model.version}`;
  const lines = [
    head,
    "",
    `Window: ${r.observed} of ${r.windowSize} predictions${r.full ? "" : " (not full yet: nothing can be over)"}${r.oldestAt ? `, ${r.oldestAt} → ${r.newestAt}` : ""}.`,
    `Consecutive drifting checks: **${check.consecutive}** (confirmed at ${check.sustain}).`,
    "",
    "| statistic | value | threshold | over |",
    "|---|---:|---:|:---:|",
    ...r.statistics.map((s) => `| ${s.name} | ${fmt(s.value)} | ${s.threshold} | ${s.over ? "❌" : "✅"} |`),
  ];
  if (extra.runUrl) lines.push("", `Check run: ${extra.runUrl}`);
  return `${lines.join("\n")}\n`;
}

/** Runs one drift check: `modelship drift` and actions/check-drift. */
export async function runDriftCheck(options: {
  url?: string | undefined;
  log?: string | undefined;
  model?: string | undefined;
  policy?: string | undefined;
  stateDir?: string | undefined;
  keepState?: boolean;
}): Promise<DriftCheck> {
  if (!!options.url === !!options.log)
    throw new UserError("pass exactly one of --url <edge or server> and --log <prediction log>");
  if (options.log && !options.model)
    throw new UserError(
      "--log needs --model <bundle dir>: the reference to compare with lives in the bundle",
    );
  const policy = await loadDriftPolicy(options.policy);
  const raw = options.url
    ? await fetchDriftReport(options.url)
    : await driftFromLog(options.log!, options.model!, policy);
  const report = applyPolicy(raw, policy);
  if (options.keepState === false) {
    return {
      report,
      over: report.statistics.filter((s) => s.over).map((s) => s.name),
      consecutive: report.drift ? 1 : 0,
      sustain: policy.sustain,
      confirmed: report.drift && policy.sustain <= 1,
      retrain: false,
      stateFile: "",
    };
  }
  return recordCheck(report, policy, resolveStateDir(options.stateDir));
}
