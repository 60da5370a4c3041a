import {
  type AnalysisResult,
  analyseInterval,
  type CheckStatus,
  explain,
  type Scrape,
} from "../analysis/analysis.js";
import { envHashesText } from "../contracts/drift.js";
import { identityMismatch } from "../image/labels.js";
import type { OperationHandle } from "../ledger/ledger.js";
import type { AnalysisRecord, LedgerData, ShadowRecord, VersionEntry } from "../ledger/schema.js";
import type { ShadowReport } from "../shadow/compare.js";
import { runShadow } from "../shadow/run.js";
import { ExitCode, UserError } from "../util/errors.js";
import type { Reporter } from "../util/progress.js";
import { decide, initialPhase, type Phase } from "./machine.js";
import { weightsFromLedger } from "./plan.js";
import type { Candidate, RolloutDeps, RunningContainer } from "./ports.js";
import { markFailed, pruneImages, reconcile, retire, takeOut } from "./reconcile.js";
import type { RolloutSettings } from "./settings.js";

/** One point of the rollout's timeline (job summary table and mermaid chart). */
export interface TimelinePoint {
  at: string;
  label: string;
  weight: number;
  canaryRequests: number;
  canaryErrors: number;
  errorRate: number;
  verdict?: CheckStatus;
  summary?: string;
}

export interface DeployOutcome {
  status: "promoted" | "aborted" | "unchanged";
  version: string;
  previous: string | null;
  firstDeploy: boolean;
  reason?: string;
  /** Requests through the edge during the rollout and how many of them failed (client-facing 5xx). */
  edge: { url: string; requests: number; failed: number };
  timeline: TimelinePoint[];
  durationMs: number;
  repaired: string[];
  /** What repair found wrong and left alone before the rollout (e.g. the stable was down). */
  warnings: string[];
  /** The shadow step's verdict and figures (`--shadow`; absent when off or on a first deploy). */
  shadow?: ShadowReport & {
    durationMs: number;
    extensions: number;
    /** The prediction log hashes text (MODELSHIP_PREDICTION_LOG_HASH_TEXT): no request text was kept. */
    inputsHidden: boolean;
  };
}

class RolloutAborted extends Error {}

/** The figures of a shadow verdict `shadowDetail` needs (a ShadowReport, or its ledger record). */
export type ShadowFigures = Pick<
  ShadowReport,
  | "verdict"
  | "attempts"
  | "pairs"
  | "agreement"
  | "agreementCi"
  | "meanAbsDelta"
  | "p95AbsDelta"
  | "candidateErrors"
  | "candidateP95Ms"
>;

/**
 * Figures of a shadow verdict as the progress line, `status`, the job summary and the GitHub Deployment
 * show them: agreement with its 95 % interval, mean and p95 |Δp|, the candidate's errors and p95
 * latency, then the verdict ("… : pass").
 */
export function shadowDetail(r: ShadowFigures): string {
  const p = (x: number) => `${Number((x * 100).toFixed(1))}%`;
  const candidate = `candidate ${r.candidateErrors} errors${r.candidateP95Ms === null ? "" : `, p95 ${Math.round(r.candidateP95Ms)} ms`}`;
  if (r.agreement === null || r.agreementCi === null)
    return `${r.pairs} pairs of ${r.attempts} mirrored, ${candidate}: ${r.verdict}`;
  const ci = `[${Number((r.agreementCi.low * 100).toFixed(1))}–${Number((r.agreementCi.high * 100).toFixed(1))}]`;
  const p95 = r.p95AbsDelta === null ? "" : ` (p95 ${r.p95AbsDelta.toFixed(3)})`;
  return `${r.pairs} pairs, agreement ${p(r.agreement)} ${ci}, mean |Δp| ${(r.meanAbsDelta ?? 0).toFixed(3)}${p95}, ${candidate}: ${r.verdict}`;
}

const nowIso = () => new Date().toISOString();

function newEntry(c: Candidate): VersionEntry {
  const at = nowIso();
  return {
    version: c.version,
    // `--model`: the image is built inside the "Building container" step and recorded then.
    image: c.image.ref ? c.image : { ref: "(building)", digest: null },
    model: c.model,
    container: null,
    role: "canary",
    weight: 0,
    createdAt: at,
    updatedAt: at,
    analysis: [],
  };
}

function patch(l: LedgerData, version: string, fields: Partial<VersionEntry>): void {
  const v = l.versions.find((x) => x.version === version);
  if (v) Object.assign(v, fields, { updatedAt: nowIso() });
}

export interface DeployInput {
  deps: RolloutDeps;
  op: OperationHandle;
  candidate: Candidate;
  settings: RolloutSettings;
  reporter: Reporter;
  /** Builds the image first (`--model`); returns a detail for the "Building container" line. */
  build?: () => Promise<string>;
}

/**
 * Deploys `candidate` behind the edge: container → ready → identity (`/model-info` vs labels) →
 * golden smoke test → weight 0 → canary steps with analysis → promote (old stable drained and kept
 * warm) or abort (stable untouched). Each phase is one method that first records its typed phase in
 * the ledger, so a crash at any point leaves the exact point for repair to resume or unwind from.
 */
export function runDeploy(input: DeployInput): Promise<DeployOutcome> {
  return new DeployRun(input).run();
}

class DeployRun {
  private readonly timeline: TimelinePoint[] = [];
  private readonly started: number;
  private readonly name: string;
  private edgeStart = { requests: 0, failed: 0 };
  private repaired: string[] = [];
  private warnings: string[] = [];
  private stable: VersionEntry | undefined;
  private container: RunningContainer | undefined;
  private shadowResult: DeployOutcome["shadow"];

  constructor(private readonly input: DeployInput) {
    this.started = input.deps.clock.now();
    this.name = input.candidate.version;
  }

  async run(): Promise<DeployOutcome> {
    await this.reconcile();
    const before = await this.input.op.ledger.read();
    this.stable = before.versions.find((v) => v.role === "stable");
    if (this.stable?.version === this.name) return this.unchanged(this.stable);
    await this.record(before);
    try {
      await this.bringUpCandidate();
    } catch (err) {
      return this.abort(
        `the candidate did not get ready: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const stable = this.stable;
    if (!stable) {
      await this.firstDeploy();
      return this.finish(null);
    }
    try {
      if (this.input.settings.shadowMs > 0) await this.shadowStep();
      await this.canarySteps(stable);
    } catch (err) {
      if (err instanceof RolloutAborted) return this.abort(err.message);
      return this.abort(`rollout error: ${err instanceof Error ? err.message : String(err)}`);
    }
    await this.promote(stable);
    return this.finish(stable);
  }

  // ---- phase: reconciling (the host and ledger in line before anything changes) ----
  private async reconcile(): Promise<void> {
    const { deps, op, settings, reporter } = this.input;
    await op.advance({ name: "reconciling" });
    const r = await reconcile(deps, op, settings);
    this.repaired = r.actions;
    this.warnings = r.warnings;
    for (const line of r.actions) reporter.warn(`repair: ${line}`);
    for (const line of r.warnings) reporter.warn(line);
    this.edgeStart = await deps.traffic.edgeCounters();
  }

  /** Same version already stable: nothing to do, unless the image is another model under that version. */
  private async unchanged(stable: VersionEntry): Promise<DeployOutcome> {
    const c = this.input.candidate;
    if (stable.model && c.model && stable.model.sha256 !== c.model.sha256) {
      throw new UserError(
        `${c.image.ref} says it is ${this.name} with model sha256 ${c.model.sha256.slice(0, 12)}…, but ${this.name} serving here has sha256 ${stable.model.sha256.slice(0, 12)}…`,
        {
          exitCode: ExitCode.usage,
          hint: "a version names exactly one model: build the changed model as a new version",
        },
      );
    }
    this.input.reporter.info(`${this.name} is already the stable version: nothing to deploy.`);
    return this.outcome("unchanged", this.name, { firstDeploy: false });
  }

  /** The candidate enters the ledger as canary at weight 0 (a version deployed before starts over). */
  private async record(before: LedgerData): Promise<void> {
    const { deps, op, settings, candidate } = this.input;
    const earlier = before.versions.find((v) => v.version === this.name);
    if (earlier) await takeOut(deps, earlier, undefined, settings);
    await op.update((l) => {
      l.versions = l.versions.filter((v) => v.version !== this.name);
      l.versions.push(newEntry(candidate));
      l.history.push({
        at: nowIso(),
        kind: "deploy",
        version: this.name,
        from: this.stable?.version,
        by: op.operation.by,
      });
    });
  }

  // ---- phases: building → starting → verifying → attaching (one reporter step) ----
  private async bringUpCandidate(): Promise<void> {
    const { reporter } = this.input;
    await reporter.step(
      "Building container",
      async (update) => {
        const parts: string[] = [];
        if (this.input.build) parts.push(await this.buildImage(update));
        parts.push(await this.startContainer(update));
        parts.push(await this.verify(update));
        await this.attach(update);
        return parts.join("; ");
      },
      (detail) => `(${detail})`,
    );
  }

  private async buildImage(update: (t: string) => void): Promise<string> {
    const { op, candidate } = this.input;
    await op.advance({ name: "building", version: this.name });
    update("building image");
    const detail = await this.input.build!();
    await op.update((l) => patch(l, this.name, { image: candidate.image }));
    return detail;
  }

  private async startContainer(update: (t: string) => void): Promise<string> {
    const { deps, op, settings, candidate } = this.input;
    await op.advance({ name: "starting", version: this.name, container: deps.containers.nameFor(this.name) });
    update("starting container");
    const c = await deps.containers.start(candidate);
    this.container = c;
    await op.update((l) => patch(l, this.name, { container: c }));
    update("waiting for ready");
    const readyMs = await deps.containers.waitReady(c, settings.readyTimeoutMs);
    return `${c.name} on port ${c.hostPort}, ready in ${(readyMs / 1000).toFixed(1)}s`;
  }

  /** What the container serves must be what its labels (and so the ledger) say, before any traffic. */
  private async verify(update: (t: string) => void): Promise<string> {
    const { deps, op, settings, candidate } = this.input;
    const c = this.container!;
    await op.advance({ name: "verifying", version: this.name });
    if (candidate.model) {
      update("checking /model-info against the labels");
      const wrong = identityMismatch(candidate.model, await deps.containers.modelInfo(c));
      if (wrong.length > 0)
        throw new Error(`the container serves another model than its labels say: ${wrong.join("; ")}`);
    }
    update("golden smoke test");
    return settings.skipSmoke ? "smoke test skipped (--skip-smoke)" : await deps.smoke(c, candidate);
  }

  private async attach(update: (t: string) => void): Promise<void> {
    const { deps, op, settings } = this.input;
    await op.advance({ name: "attaching", version: this.name });
    update("attaching to the router at weight 0");
    await deps.traffic.attach(this.name, this.container!.hostPort);
    if (!(await deps.traffic.waitHealthy(this.name, settings.healthTimeoutMs)))
      throw new Error(`HAProxy's health check did not pass within ${settings.healthTimeoutMs} ms`);
  }

  /** Every weight change: the ledger first, then the router set from the ledger (one source). */
  private async setWeights(weights: Record<string, number>, extra?: (l: LedgerData) => void): Promise<void> {
    const written = await this.input.op.update((l) => {
      for (const [version, weight] of Object.entries(weights)) patch(l, version, { weight });
      extra?.(l);
    });
    await this.input.deps.traffic.setWeights(routerWeights(written, Object.keys(weights)));
  }

  // ---- phase: switching (first deploy: nothing to compare with, straight to 100%) ----
  private async firstDeploy(): Promise<void> {
    const { op, reporter } = this.input;
    await reporter.step(
      "Starting first deployment (100% traffic)",
      async () => {
        await op.advance({ name: "switching", version: this.name, from: null });
        await this.setWeights({ [this.name]: 100 }, (l) => {
          patch(l, this.name, { role: "stable", promotedAt: nowIso() });
          l.history.push({ at: nowIso(), kind: "promote", version: this.name, reason: "first deploy" });
        });
      },
      () => `(${this.name}, no previous version to compare with)`,
    );
    this.point("100%", 100);
  }

  // ---- phase: shadow (weight 0: the edge mirrors live requests, answers compared pair by pair) ----
  private async shadowStep(): Promise<void> {
    const { deps, op, settings, reporter, candidate } = this.input;
    const seconds = `${Number((settings.shadowMs / 1000).toFixed(1))}s`;
    await reporter
      .step(
        `Shadow ${seconds}`,
        async (update) => {
          await op.advance({ name: "shadow", version: this.name });
          const startedAt = nowIso();
          // Request texts reach the report (and the job summary) only when the prediction logs keep
          // them too: hidden when the candidate's or the stable's server hashes text.
          const inputsHidden =
            envHashesText(candidate.env) || envHashesText(this.stable?.container?.run?.env);
          update("mirroring live requests to the candidate");
          const run = await runShadow(
            deps.traffic,
            { name: this.name, port: this.container!.hostPort },
            {
              durationMs: settings.shadowMs,
              maxExtensions: settings.maxExtensions,
              thresholds: settings.shadow,
              labels: candidate.card?.io.labels,
              // The prediction log hashes texts: the report keeps none either.
              hideInput: inputsHidden,
              sleep: (ms) => deps.clock.sleep(ms),
              onInterval: (report, extension) => {
                update(shadowDetail(report));
                if (report.verdict === "inconclusive" && extension < settings.maxExtensions)
                  reporter.event({ type: "extend", version: this.name, weight: 0, reason: report.summary });
              },
            },
          );
          this.shadowResult = {
            ...run.report,
            durationMs: settings.shadowMs * (run.extensions + 1),
            extensions: run.extensions,
            inputsHidden,
          };
          const { examples: _texts, inputsHidden: _h, ...figures } = this.shadowResult;
          const record: ShadowRecord = { ...figures, startedAt, endedAt: nowIso() };
          await op.update((l) => patch(l, this.name, { shadow: record }));
          this.timeline.push({
            at: nowIso(),
            label: "shadow",
            weight: 0,
            canaryRequests: run.report.attempts,
            canaryErrors: run.report.candidateErrors,
            errorRate: run.report.attempts > 0 ? run.report.candidateErrors / run.report.attempts : 0,
            verdict: run.report.verdict,
            summary: run.report.summary,
          });
          reporter.event({ type: "shadow", version: this.name, ...this.shadowResult });
          // Only a pass lets weight move: a fail, or too few pairs after every extension, aborts.
          if (run.report.verdict !== "pass") throw new RolloutAborted(shadowDetail(run.report));
          return run.report;
        },
        (r) => `(${shadowDetail(r)})`,
      )
      .catch((err: unknown) => {
        const r = this.shadowResult;
        if (!(err instanceof RolloutAborted) || !r) throw err;
        const failed = r.checks.filter((c) => c.status !== "pass").map((c) => c.message);
        throw new RolloutAborted(
          r.verdict === "inconclusive"
            ? `shadow step inconclusive after ${r.extensions + 1} intervals (${r.summary}); never moving weight blind — send traffic or lengthen --shadow`
            : `shadow step failed: ${failed.join("; ") || r.summary}`,
        );
      });
  }

  // ---- phase: canary (one step per weight, analysed, advanced by the pure machine) ----
  private async canarySteps(stable: VersionEntry): Promise<void> {
    const { settings } = this.input;
    const steps = settings.steps.filter((w) => w < 100);
    let phase: Phase = initialPhase(settings);
    while (phase.kind === "analyse") phase = await this.canaryStep(stable, phase, steps[phase.step]!);
  }

  private async canaryStep(
    stable: VersionEntry,
    entry: Extract<Phase, { kind: "analyse" }>,
    weight: number,
  ): Promise<Phase> {
    const { deps, op, settings, reporter, candidate } = this.input;
    const stepIndex = entry.step;
    const title =
      stepIndex === 0
        ? `Starting canary deployment (${weight}% traffic)`
        : `No errors detected, expanding to ${weight}%`;
    let last: AnalysisResult | undefined;
    return reporter.step(
      title,
      async (update) => {
        await op.advance({ name: "canary", version: this.name, step: stepIndex, weight });
        await this.setWeights({ [this.name]: weight, [stable.version]: 100 - weight });
        reporter.event({ type: "weight", version: this.name, weight, stable: stable.version });
        let current = entry;
        let start = await this.scrape(stable);
        const stepStarted = nowIso();
        for (;;) {
          update(`analysing ${Math.round(settings.intervalMs / 1000)}s of traffic`);
          await deps.clock.sleep(settings.intervalMs);
          const end = await this.scrape(stable);
          const result = analyseInterval(start, end, settings.analysis, {
            reference: candidate.card?.reference,
            allowNoData: settings.allowNoData,
          });
          last = result;
          await this.recordAnalysis(stepIndex, weight, stepStarted, current.attempt, result);
          const next = decide(current, result.verdict, explain(result), settings);
          if (next.kind !== "analyse" || next.step !== stepIndex) {
            if (next.kind === "abort") throw new RolloutAborted(next.reason);
            return next;
          }
          if (result.verdict === "inconclusive") {
            reporter.event({ type: "extend", version: this.name, weight, reason: explain(result) });
            // Extending keeps the same start: the evidence accumulates until it is enough.
          } else {
            start = end;
          }
          current = next;
        }
      },
      () => (last ? `(${last.summary})` : ""),
    );
  }

  private async scrape(stable: VersionEntry): Promise<Scrape> {
    const { deps } = this.input;
    const canary = this.container!;
    const [counters, cm, sm] = await Promise.all([
      deps.traffic.serverCounters(),
      deps.scrapeMetrics(canary.hostPort),
      stable.container ? deps.scrapeMetrics(stable.container.hostPort) : Promise.resolve(null),
    ]);
    return {
      at: deps.clock.now(),
      canary: { router: counters[this.name] ?? null, metrics: cm },
      stable: { router: counters[stable.version] ?? null, metrics: sm },
    };
  }

  private async recordAnalysis(
    step: number,
    weight: number,
    startedAt: string,
    attempt: number,
    result: AnalysisResult,
  ): Promise<void> {
    const record: AnalysisRecord = {
      step,
      weight,
      startedAt,
      endedAt: nowIso(),
      verdict: result.verdict,
      canaryRequests: result.figures.canaryRequests,
      canaryErrors: result.figures.canaryErrors,
      stableRequests: result.figures.stableRequests,
      checks: result.checks,
    };
    await this.input.op.update((l) => {
      l.versions.find((x) => x.version === this.name)?.analysis.push(record);
    });
    this.timeline.push({
      at: record.endedAt,
      label: `${weight}%${attempt > 0 ? ` (+${attempt})` : ""}`,
      weight,
      canaryRequests: result.figures.canaryRequests,
      canaryErrors: result.figures.canaryErrors,
      errorRate:
        result.figures.canaryRequests > 0 ? result.figures.canaryErrors / result.figures.canaryRequests : 0,
      verdict: result.verdict,
      summary: result.summary,
    });
    this.input.reporter.event({ type: "analysis", version: this.name, weight, attempt, ...result });
  }

  // ---- phase: switching (the commit point: from here repair finishes the deploy instead of unwinding) ----
  private async promote(stable: VersionEntry): Promise<void> {
    const { op, reporter, settings, deps } = this.input;
    const standbyUntil = new Date(deps.clock.now() + settings.standbyWindowMs).toISOString();
    await reporter.step(
      "Expanding to 100%",
      async () => {
        await op.advance({ name: "switching", version: this.name, from: stable.version });
        await this.setWeights({ [this.name]: 100, [stable.version]: 0 }, (l) => {
          patch(l, this.name, { role: "stable", promotedAt: nowIso() });
          patch(l, stable.version, { role: "standby", standbyUntil });
          l.history.push({ at: nowIso(), kind: "promote", version: this.name, from: stable.version });
        });
        this.point("100%", 100);
      },
      () => `(${this.name} is stable)`,
    );
  }

  // ---- phases: draining → retiring ----
  private async finish(previous: VersionEntry | null): Promise<DeployOutcome> {
    const { deps, op, settings, reporter } = this.input;
    if (previous) await drainToStandby(deps, op, settings, reporter, previous.version);
    await op.advance({ name: "retiring" });
    // Only one warm standby: the version just replaced. Older ones are retired.
    for (const v of (await op.ledger.read()).versions) {
      if (v.role === "standby" && v.version !== previous?.version) {
        await takeOut(deps, v, undefined, settings);
        await op.update((l) => retire(l, v.version));
      }
    }
    const pruned = await pruneImages(deps, await op.ledger.read(), settings.keepImages);
    if (pruned.length) reporter.event({ type: "images-removed", refs: pruned });
    const out = await this.outcome("promoted", previous?.version ?? null, { firstDeploy: previous === null });
    reporter.info(
      out.edge.failed === 0
        ? `Deployment complete! Zero requests dropped. (${out.edge.requests} requests through the edge during the rollout)`
        : `Deployment complete, but ${out.edge.failed} of ${out.edge.requests} requests failed at the edge during the rollout.`,
    );
    reporter.event({ type: "promoted", version: this.name, previous: out.previous, edge: out.edge });
    return out;
  }

  // ---- phase: aborting (all traffic back to the stable, candidate out, marked failed) ----
  private async abort(reason: string): Promise<DeployOutcome> {
    const { deps, op, settings, reporter } = this.input;
    const stable = this.stable;
    await reporter.step(
      stable ? `Aborting: all traffic back to ${stable.version}` : "Aborting: removing the candidate",
      async () => {
        await op.advance({ name: "aborting", version: this.name, reason: reason.slice(0, 500) });
        const attached = (await deps.traffic.servers()).includes(this.name);
        await this.setWeights({
          ...(attached ? { [this.name]: 0 } : {}),
          ...(stable ? { [stable.version]: 100 } : {}),
        });
        if (attached) {
          await deps.traffic.drain(this.name);
          await deps.traffic.waitDrained(this.name, settings.drainTimeoutMs);
          await deps.traffic.detach(this.name);
        }
        if (this.container) await deps.containers.stopAndRemove(this.container);
        await op.update((l) => markFailed(l, this.name, reason));
      },
    );
    const out = await this.outcome("aborted", stable?.version ?? null, { firstDeploy: !stable, reason });
    reporter.info(`Deployment aborted: ${reason}`);
    reporter.info(
      stable
        ? `${stable.version} keeps serving 100% of traffic. ${out.edge.failed === 0 ? "Zero requests dropped" : `${out.edge.failed} requests failed at the edge`} (${out.edge.requests} requests during the rollout).`
        : `Nothing is serving yet. ${out.edge.requests} requests reached the edge during the attempt.`,
    );
    reporter.event({ type: "aborted", version: this.name, reason, edge: out.edge });
    return out;
  }

  private point(label: string, weight: number): void {
    this.timeline.push({ at: nowIso(), label, weight, canaryRequests: 0, canaryErrors: 0, errorRate: 0 });
  }

  private async outcome(
    status: DeployOutcome["status"],
    previous: string | null,
    extra: { firstDeploy: boolean; reason?: string },
  ): Promise<DeployOutcome> {
    const { deps } = this.input;
    const end = await deps.traffic.edgeCounters();
    return {
      status,
      version: this.name,
      previous,
      ...extra,
      edge: {
        url: deps.traffic.edgeUrl(),
        requests: Math.max(0, end.requests - this.edgeStart.requests),
        failed: Math.max(0, end.failed - this.edgeStart.failed),
      },
      timeline: this.timeline,
      durationMs: deps.clock.now() - this.started,
      repaired: this.repaired,
      warnings: this.warnings,
      ...(this.shadowResult ? { shadow: this.shadowResult } : {}),
    };
  }
}

/** The router weights of `versions`, as the ledger now has them (a standby's backup weight is left alone otherwise). */
export function routerWeights(l: LedgerData, versions: string[]): Record<string, number> {
  const all = weightsFromLedger(l, { standbys: true });
  return Object.fromEntries(versions.filter((v) => v in all).map((v) => [v, all[v]!]));
}

/** Phase draining, shared with rollback: the replaced version drained, then kept as a warm backup. */
export async function drainToStandby(
  deps: RolloutDeps,
  op: OperationHandle,
  settings: RolloutSettings,
  reporter: Reporter,
  version: string,
): Promise<void> {
  const { traffic, clock } = deps;
  await reporter.step(
    "Draining old connections",
    async () => {
      await op.advance({ name: "draining", version });
      await traffic.drain(version);
      const drained = await traffic.waitDrained(version, settings.drainTimeoutMs);
      await traffic.standby(version);
      return drained;
    },
    (d) =>
      d.drained
        ? `(${version} idle after ${d.waitedMs}ms; kept as warm standby until ${standbyUntilText(settings, clock.now())})`
        : `(${d.sessions} sessions still open on ${version} after ${d.waitedMs}ms; they finish on their own)`,
  );
}

function standbyUntilText(settings: RolloutSettings, now: number): string {
  return new Date(now + settings.standbyWindowMs).toISOString().replace(/\.\d+Z$/, "Z");
}
