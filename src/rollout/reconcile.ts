import type { OperationHandle } from "../ledger/ledger.js";
import type { LedgerData, VersionEntry } from "../ledger/schema.js";
import { ExitCode, UserError } from "../util/errors.js";
import { describeStep, type HostView, planRepair, type RepairStep, weightsFromLedger } from "./plan.js";
import type { RolloutDeps } from "./ports.js";
import type { RolloutSettings } from "./settings.js";

const nowIso = () => new Date().toISOString();

/** The planner refused: nothing was changed (the operation is cleared, not left as interrupted). */
export class RepairRefused extends UserError {}

/** What really runs: this state dir's containers and the servers behind the edge. */
export async function observe(deps: RolloutDeps): Promise<HostView> {
  const [containers, servers] = await Promise.all([deps.containers.list(), deps.traffic.view()]);
  return { containers, servers, now: deps.clock.now() };
}

export interface Reconciled {
  /** One sentence per change made. */
  actions: string[];
  /** What is wrong and was deliberately left alone (e.g. the stable is down), with the fix. */
  warnings: string[];
}

/**
 * Brings host and ledger back in line before an operation (and in `host repair`): plans with
 * plan.ts (unfinished canary out and marked failed, orphans removed, dead or expired standbys retired
 * unless one is the last healthy server, unknown servers out, the stable version at 100%, a lost
 * ledger rebuilt from the running containers) and applies the plan. A plan that refuses changes
 * nothing and throws.
 */
export async function reconcile(
  deps: RolloutDeps,
  op: OperationHandle,
  settings: RolloutSettings,
): Promise<Reconciled> {
  await deps.traffic.ensureRunning();
  const host = await observe(deps);
  const steps = planRepair(await op.ledger.read(), host, {
    interrupted: op.interrupted,
    standbyWindowMs: settings.standbyWindowMs,
  });
  const refusal = steps.find((s) => s.do === "refuse");
  if (refusal?.do === "refuse")
    throw new RepairRefused(`repair refused: ${refusal.reason}`, {
      exitCode: ExitCode.environment,
      hint: refusal.hint,
    });
  const out: Reconciled = { actions: [], warnings: [] };
  // Only a shadow step runs the mirror, and none runs now (we hold the lock): one left on is a crash's.
  if (await deps.traffic.shadowRunning()) {
    await deps.traffic.setShadow(null);
    out.actions.push("stopped the shadow mirror an interrupted shadow step left running");
  }
  for (const step of steps) {
    const changed = await applyStep(deps, op, settings, host, step);
    if (step.do === "warn") out.warnings.push(describeStep(step));
    else if (changed) out.actions.push(describeStep(step));
  }
  return out;
}

/** Applies one planned step; false when it turned out to change nothing. */
async function applyStep(
  deps: RolloutDeps,
  op: OperationHandle,
  settings: RolloutSettings,
  host: HostView,
  step: RepairStep,
): Promise<boolean> {
  const { traffic, containers } = deps;
  const entry = async (version: string) =>
    (await op.ledger.read()).versions.find((v) => v.version === version);
  switch (step.do) {
    case "adopt":
      await op.update((l) => {
        l.versions = l.versions.filter((v) => !step.entries.some((e) => e.version === v.version));
        l.versions.push(...step.entries);
        l.history.push({ at: nowIso(), kind: "repair", reason: step.note });
      });
      return true;
    case "unwind": {
      const v = await entry(step.version);
      if (!v) return false;
      await takeOut(deps, v, undefined, settings);
      await op.update((l) =>
        step.role === "failed" ? markFailed(l, v.version, step.reason) : retire(l, v.version),
      );
      return true;
    }
    case "retire-standby": {
      const v = await entry(step.version);
      if (!v) return false;
      await takeOut(deps, v, undefined, settings);
      await op.update((l) => retire(l, v.version));
      return true;
    }
    case "reattach-standby":
      await traffic.attach(step.version, step.port, { backup: true });
      return true;
    case "remove-container": {
      const c = host.containers.find((x) => x.id === step.container.id);
      const routed = host.servers.find((s) => s.name === c?.model?.version && s.port === c?.hostPort);
      if (routed) await drainAndDetach(deps, routed.name, settings);
      await containers.stopAndRemove(step.container);
      return true;
    }
    case "detach":
      await drainAndDetach(deps, step.name, settings);
      return true;
    case "attach-stable":
      await traffic.attach(step.version, step.port);
      return true;
    case "route-to-stable": {
      const before = await op.ledger.read();
      const stable = before.versions.find((v) => v.version === step.version);
      const view = await traffic.view();
      const s = view.find((x) => x.name === step.version);
      const drift =
        stable?.weight !== 100 ||
        !s ||
        s.backup ||
        s.weight !== 100 ||
        s.state !== "ready" ||
        view.some((x) => x.name !== step.version && !x.backup && x.weight > 0) ||
        step.standbys.some((n) => view.find((x) => x.name === n && !x.backup));
      if (!drift) return false;
      const written = await op.update((l) => {
        for (const v of l.versions) {
          if (v.version === step.version) v.weight = 100;
          else if (v.role === "standby") v.weight = 0;
        }
      });
      await traffic.activate(step.version);
      const attached = new Set(await traffic.servers());
      await traffic.setWeights(
        Object.fromEntries(Object.entries(weightsFromLedger(written)).filter(([name]) => attached.has(name))),
      );
      for (const name of step.standbys) if (view.some((x) => x.name === name)) await traffic.standby(name);
      return true;
    }
    case "warn":
    case "note":
    case "refuse":
      return step.do === "note";
  }
}

async function drainAndDetach(deps: RolloutDeps, name: string, settings: RolloutSettings): Promise<void> {
  await deps.traffic.setWeights({ [name]: 0 });
  await deps.traffic.drain(name);
  await deps.traffic.waitDrained(name, settings.drainTimeoutMs);
  await deps.traffic.detach(name);
}

/** Out of the router and stopped (drained first when it may still hold connections). */
export async function takeOut(
  deps: RolloutDeps,
  v: VersionEntry,
  attached: Set<string> | undefined,
  settings: RolloutSettings,
): Promise<void> {
  const inRouter = attached ? attached.has(v.version) : (await deps.traffic.servers()).includes(v.version);
  if (inRouter) await drainAndDetach(deps, v.version, settings);
  if (v.container) await deps.containers.stopAndRemove(v.container);
}

export function markFailed(l: LedgerData, version: string, reason: string): void {
  const v = l.versions.find((x) => x.version === version);
  if (!v) return;
  const at = nowIso();
  Object.assign(v, {
    role: "failed",
    weight: 0,
    container: null,
    failedAt: at,
    failureReason: reason,
    updatedAt: at,
  });
  l.history.push({ at, kind: "abort", version, reason });
}

export function retire(l: LedgerData, version: string): void {
  const v = l.versions.find((x) => x.version === version);
  if (!v) return;
  const at = nowIso();
  Object.assign(v, { role: "retired", weight: 0, container: null, retiredAt: at, updatedAt: at });
  delete v.standbyUntil;
  l.history.push({ at, kind: "retire", version });
}

/**
 * Removes images of versions beyond the newest `keep` (by creation), except those still running, and
 * only images a deploy of this state dir built (`--model`): an image given with `--image` belongs to
 * whoever built or pulled it. The container port also skips images another state dir's ledger names.
 * Returns the refs removed.
 */
export async function pruneImages(deps: RolloutDeps, ledger: LedgerData, keep: number): Promise<string[]> {
  const newestFirst = [...ledger.versions].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const inUse = new Set(
    ledger.versions
      .filter((v) => v.container || v.role === "stable" || v.role === "standby")
      .map((v) => v.image.ref),
  );
  const kept = new Set(newestFirst.slice(0, keep).map((v) => v.image.ref));
  const removed: string[] = [];
  for (const v of newestFirst.slice(keep)) {
    if (!v.image.builtHere) continue;
    if (inUse.has(v.image.ref) || kept.has(v.image.ref) || removed.includes(v.image.ref)) continue;
    await deps.containers.removeImage(v.image.ref);
    removed.push(v.image.ref);
  }
  return removed;
}
