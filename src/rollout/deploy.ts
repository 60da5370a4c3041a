import {
  type AnalysisResult,
  analyseInterval,
  type CheckStatus,
  explain,
  type Scrape,
} from "../analysis/analysis.js";
import type { OperationHandle } from "../ledger/ledger.js";
import type { AnalysisRecord, LedgerData, VersionEntry } from "../ledger/schema.js";
import type { Reporter } from "../util/progress.js";
import { decide, initialPhase, type Phase } from "./machine.js";
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
}

class RolloutAborted extends Error {}

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

/**
 * Deploys `candidate` behind the edge: container → ready → golden smoke test → weight 0 → canary steps
 * with analysis → promote (old stable drained and kept warm) or abort (stable untouched). Every step is
 * written to the ledger first, so a crash at any point is visible and repairable.
 */
export async function runDeploy(input: {
  deps: RolloutDeps;
  op: OperationHandle;
  candidate: Candidate;
  settings: RolloutSettings;
  reporter: Reporter;
  /** Builds the image first (`--model`); returns a detail for the "Building container" line. */
  build?: () => Promise<string>;
}): Promise<DeployOutcome> {
  const { deps, op, candidate, settings, reporter } = input;
  const { traffic, containers, clock } = deps;
  const started = clock.now();
  const name = candidate.version;
  const timeline: TimelinePoint[] = [];

  const repaired = await reconcile(deps, op, settings);
  for (const line of repaired) reporter.warn(`repair: ${line}`);
  const edgeStart = await traffic.edgeCounters();
  const edgeOutcome = async () => {
    const end = await traffic.edgeCounters();
    return {
      url: traffic.edgeUrl(),
      requests: Math.max(0, end.requests - edgeStart.requests),
      failed: Math.max(0, end.failed - edgeStart.failed),
    };
  };

  const before = await op.ledger.read();
  const stable = before.versions.find((v) => v.role === "stable");
  if (stable?.version === name) {
    reporter.info(`${name} is already the stable version: nothing to deploy.`);
    return {
      status: "unchanged",
      version: name,
      previous: name,
      firstDeploy: false,
      edge: await edgeOutcome(),
      timeline,
      durationMs: clock.now() - started,
      repaired,
    };
  }
  // A version deployed before (failed, retired, standby) starts over from a fresh container.
  const earlier = before.versions.find((v) => v.version === name);
  if (earlier) await takeOut(deps, earlier, undefined, settings);
  await op.update((l) => {
    l.versions = l.versions.filter((v) => v.version !== name);
    l.versions.push(newEntry(candidate));
    l.history.push({
      at: nowIso(),
      kind: "deploy",
      version: name,
      from: stable?.version,
      by: op.operation.by,
    });
  });

  let container: RunningContainer | undefined;
  const fail = async (reason: string): Promise<DeployOutcome> => {
    await reporter.step(
      stable ? `Aborting: all traffic back to ${stable.version}` : "Aborting: removing the candidate",
      async () => {
        if (stable) await traffic.setWeights({ [stable.version]: 100 });
        const servers = await traffic.servers();
        if (servers.includes(name)) {
          await traffic.setWeights({ [name]: 0 });
          await traffic.drain(name);
          await traffic.waitDrained(name, settings.drainTimeoutMs);
          await traffic.detach(name);
        }
        if (container) await containers.stopAndRemove(container);
        await op.update((l) => {
          markFailed(l, name, reason);
          if (stable) patch(l, stable.version, { weight: 100 });
        });
      },
    );
    const edge = await edgeOutcome();
    reporter.info(`Deployment aborted: ${reason}`);
    reporter.info(
      stable
        ? `${stable.version} keeps serving 100% of traffic. ${edge.failed === 0 ? "Zero requests dropped" : `${edge.failed} requests failed at the edge`} (${edge.requests} requests during the rollout).`
        : `Nothing is serving yet. ${edge.requests} requests reached the edge during the attempt.`,
    );
    reporter.event({ type: "aborted", version: name, reason, edge });
    return {
      status: "aborted",
      version: name,
      previous: stable?.version ?? null,
      firstDeploy: !stable,
      reason,
      edge,
      timeline,
      durationMs: clock.now() - started,
      repaired,
    };
  };

  // ---- candidate container: start, ready, golden smoke test, behind the router at weight 0 ----
  try {
    await reporter.step(
      "Building container",
      async (update) => {
        const parts: string[] = [];
        if (input.build) {
          update("building image");
          parts.push(await input.build());
          await op.update((l) => patch(l, name, { image: candidate.image }));
        }
        await op.step("starting candidate container");
        update("starting container");
        container = await containers.start(candidate);
        const c = container;
        await op.update((l) => patch(l, name, { container: c }));
        update("waiting for ready");
        const readyMs = await containers.waitReady(c, settings.readyTimeoutMs);
        parts.push(`${c.name} on port ${c.hostPort}, ready in ${(readyMs / 1000).toFixed(1)}s`);
        await op.step("smoke test");
        update("golden smoke test");
        parts.push(settings.skipSmoke ? "smoke test skipped (--skip-smoke)" : await deps.smoke(c, candidate));
        await op.step("attaching to router at weight 0");
        await traffic.attach(name, c.hostPort);
        if (!(await traffic.waitHealthy(name, settings.healthTimeoutMs)))
          throw new Error(`HAProxy's health check did not pass within ${settings.healthTimeoutMs} ms`);
        return parts.join("; ");
      },
      (detail) => `(${detail})`,
    );
  } catch (err) {
    return fail(`the candidate did not get ready: ${err instanceof Error ? err.message : String(err)}`);
  }
  const canary = container!;

  // ---- first deploy: nothing to compare with, straight to 100% ----
  if (!stable) {
    await reporter.step(
      "Starting first deployment (100% traffic)",
      async () => {
        await op.step("weight 100 (first deploy)");
        await traffic.setWeights({ [name]: 100 });
        await op.update((l) => {
          patch(l, name, { role: "stable", weight: 100, promotedAt: nowIso() });
          l.history.push({ at: nowIso(), kind: "promote", version: name, reason: "first deploy" });
        });
      },
      () => `(${name}, no previous version to compare with)`,
    );
    timeline.push({
      at: nowIso(),
      label: "100%",
      weight: 100,
      canaryRequests: 0,
      canaryErrors: 0,
      errorRate: 0,
    });
    return finish(null);
  }
  const stableContainer = stable.container;

  // ---- canary steps ----
  const steps = settings.steps.filter((w) => w < 100);
  const scrape = async (): Promise<Scrape> => {
    const [counters, cm, sm] = await Promise.all([
      traffic.serverCounters(),
      deps.scrapeMetrics(canary.hostPort),
      stableContainer ? deps.scrapeMetrics(stableContainer.hostPort) : Promise.resolve(null),
    ]);
    return {
      at: clock.now(),
      canary: { router: counters[name] ?? null, metrics: cm },
      stable: { router: counters[stable.version] ?? null, metrics: sm },
    };
  };

  let phase: Phase = initialPhase(settings);
  try {
    while (phase.kind === "analyse") {
      const stepIndex: number = phase.step;
      const weight = steps[stepIndex]!;
      const title =
        stepIndex === 0
          ? `Starting canary deployment (${weight}% traffic)`
          : `No errors detected, expanding to ${weight}%`;
      let last: AnalysisResult | undefined;
      phase = await reporter.step(
        title,
        async (update) => {
          await op.step(`weight ${weight}`);
          await traffic.setWeights({ [name]: weight, [stable.version]: 100 - weight });
          await op.update((l) => {
            patch(l, name, { weight });
            patch(l, stable.version, { weight: 100 - weight });
          });
          reporter.event({ type: "weight", version: name, weight, stable: stable.version });
          let current = phase as Extract<Phase, { kind: "analyse" }>;
          let start = await scrape();
          const stepStarted = nowIso();
          for (;;) {
            update(`analysing ${Math.round(settings.intervalMs / 1000)}s of traffic`);
            await clock.sleep(settings.intervalMs);
            const end = await scrape();
            const result = analyseInterval(start, end, settings.analysis, {
              reference: candidate.card?.reference,
              allowNoData: settings.allowNoData,
            });
            last = result;
            const record: AnalysisRecord = {
              step: stepIndex,
              weight,
              startedAt: stepStarted,
              endedAt: nowIso(),
              verdict: result.verdict,
              canaryRequests: result.figures.canaryRequests,
              canaryErrors: result.figures.canaryErrors,
              stableRequests: result.figures.stableRequests,
              checks: result.checks,
            };
            await op.update((l) => {
              const v = l.versions.find((x) => x.version === name);
              v?.analysis.push(record);
            });
            timeline.push({
              at: record.endedAt,
              label: `${weight}%${current.attempt > 0 ? ` (+${current.attempt})` : ""}`,
              weight,
              canaryRequests: result.figures.canaryRequests,
              canaryErrors: result.figures.canaryErrors,
              errorRate:
                result.figures.canaryRequests > 0
                  ? result.figures.canaryErrors / result.figures.canaryRequests
                  : 0,
              verdict: result.verdict,
              summary: result.summary,
            });
            reporter.event({ type: "analysis", version: name, weight, attempt: current.attempt, ...result });
            const next = decide(current, result.verdict, explain(result), settings);
            if (next.kind !== "analyse" || next.step !== stepIndex) {
              if (next.kind === "abort") throw new RolloutAborted(next.reason);
              return next;
            }
            if (result.verdict === "inconclusive") {
              reporter.event({ type: "extend", version: name, weight, reason: explain(result) });
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
  } catch (err) {
    if (err instanceof RolloutAborted) return fail(err.message);
    return fail(`rollout error: ${err instanceof Error ? err.message : String(err)}`);
  }

  // ---- promote ----
  const standbyUntil = new Date(clock.now() + settings.standbyWindowMs).toISOString();
  await reporter.step(
    "Expanding to 100%",
    async () => {
      await op.step("promoting");
      await traffic.setWeights({ [name]: 100, [stable.version]: 0 });
      await op.update((l) => {
        patch(l, name, { role: "stable", weight: 100, promotedAt: nowIso() });
        patch(l, stable.version, { role: "standby", weight: 0, standbyUntil });
        l.history.push({ at: nowIso(), kind: "promote", version: name, from: stable.version });
      });
      timeline.push({
        at: nowIso(),
        label: "100%",
        weight: 100,
        canaryRequests: 0,
        canaryErrors: 0,
        errorRate: 0,
      });
    },
    () => `(${name} is stable)`,
  );
  return finish(stable);

  async function finish(previous: VersionEntry | null): Promise<DeployOutcome> {
    if (previous) {
      await reporter.step(
        "Draining old connections",
        async () => {
          await op.step(`draining ${previous.version}`);
          await traffic.drain(previous.version);
          const drained = await traffic.waitDrained(previous.version, settings.drainTimeoutMs);
          await traffic.standby(previous.version);
          return drained;
        },
        (d) =>
          d.drained
            ? `(${previous.version} idle after ${d.waitedMs}ms; kept as warm standby until ${standbyUntilText(settings, clock.now())})`
            : `(${d.sessions} sessions still open on ${previous.version} after ${d.waitedMs}ms; they finish on their own)`,
      );
    }
    // Only one warm standby: the version we just replaced. Older ones are retired.
    await op.step("retiring old versions");
    const now = await op.ledger.read();
    for (const v of now.versions) {
      if (v.role === "standby" && v.version !== previous?.version) {
        await takeOut(deps, v, undefined, settings);
        await op.update((l) => retire(l, v.version));
      }
    }
    const pruned = await pruneImages(deps, await op.ledger.read(), settings.keepImages);
    if (pruned.length) reporter.event({ type: "images-removed", refs: pruned });
    const edge = await edgeOutcome();
    reporter.info(
      edge.failed === 0
        ? `Deployment complete! Zero requests dropped. (${edge.requests} requests through the edge during the rollout)`
        : `Deployment complete, but ${edge.failed} of ${edge.requests} requests failed at the edge during the rollout.`,
    );
    reporter.event({ type: "promoted", version: name, previous: previous?.version ?? null, edge });
    return {
      status: "promoted",
      version: name,
      previous: previous?.version ?? null,
      firstDeploy: previous === null,
      edge,
      timeline,
      durationMs: clock.now() - started,
      repaired,
    };
  }
}

function standbyUntilText(settings: RolloutSettings, now: number): string {
  return new Date(now + settings.standbyWindowMs).toISOString().replace(/\.\d+Z$/, "Z");
}
