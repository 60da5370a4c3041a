import type { OperationHandle } from "../ledger/ledger.js";
import type { LedgerData, VersionEntry } from "../ledger/schema.js";
import type { RolloutDeps } from "./ports.js";
import type { RolloutSettings } from "./settings.js";

const nowIso = () => new Date().toISOString();

/**
 * Brings host and ledger back in line before an operation (and in `host repair`): a canary left by a
 * crashed deploy is taken out and marked failed, expired or dead standbys are retired, servers the
 * ledger does not know leave the router, and the stable version gets all traffic again.
 * Returns what it did, one sentence per action.
 */
export async function reconcile(
  deps: RolloutDeps,
  op: OperationHandle,
  settings: RolloutSettings,
): Promise<string[]> {
  const actions: string[] = [];
  const ledger = await op.ledger.read();
  await deps.traffic.ensureRunning();
  const attached = new Set(await deps.traffic.servers());
  const interrupted = op.interrupted;

  for (const v of ledger.versions.filter((x) => x.role === "canary")) {
    const why = interrupted
      ? `interrupted: the ${interrupted.kind} (pid ${interrupted.pid}) stopped at "${interrupted.step}"`
      : "left over as canary by an earlier operation";
    await takeOut(deps, v, attached, settings);
    await op.update((l) => markFailed(l, v.version, why));
    actions.push(`removed the unfinished canary ${v.version} (${why})`);
  }

  const now = deps.clock.now();
  for (const v of ledger.versions.filter((x) => x.role === "standby")) {
    const expired = v.standbyUntil !== undefined && Date.parse(v.standbyUntil) <= now;
    const alive = v.container ? await deps.containers.isRunning(v.container) : false;
    if (expired || !alive) {
      await takeOut(deps, v, attached, settings);
      await op.update((l) => retire(l, v.version));
      actions.push(
        expired
          ? `retired standby ${v.version} (its standby window ended ${v.standbyUntil})`
          : `retired standby ${v.version} (its container is gone; a rollback to it starts a new one)`,
      );
    }
  }

  const fresh = await op.ledger.read();
  const keep = new Set(
    fresh.versions.filter((v) => v.role === "stable" || v.role === "standby").map((v) => v.version),
  );
  for (const name of await deps.traffic.servers()) {
    if (!keep.has(name)) {
      await deps.traffic.detach(name);
      actions.push(`removed server ${name} from the router (not in the ledger as stable or standby)`);
    }
  }
  const stable = fresh.versions.find((v) => v.role === "stable");
  if (stable?.container) {
    const servers = new Set(await deps.traffic.servers());
    if (!servers.has(stable.version)) {
      await deps.traffic.attach(stable.version, stable.container.hostPort);
      actions.push(`re-attached stable ${stable.version} to the router`);
    }
    await deps.traffic.activate(stable.version);
    await deps.traffic.setWeights({ [stable.version]: 100 });
    for (const v of fresh.versions)
      if (v.role === "standby" && servers.has(v.version)) await deps.traffic.standby(v.version);
    if (stable.weight !== 100) {
      await op.update((l) => {
        const s = l.versions.find((x) => x.version === stable.version);
        if (s) s.weight = 100;
      });
      actions.push(`gave stable ${stable.version} all traffic again`);
    }
  }
  return actions;
}

/** Out of the router and stopped (drained first when it may still hold connections). */
export async function takeOut(
  deps: RolloutDeps,
  v: VersionEntry,
  attached: Set<string> | undefined,
  settings: RolloutSettings,
): Promise<void> {
  const inRouter = attached ? attached.has(v.version) : (await deps.traffic.servers()).includes(v.version);
  if (inRouter) {
    await deps.traffic.setWeights({ [v.version]: 0 });
    await deps.traffic.drain(v.version);
    await deps.traffic.waitDrained(v.version, settings.drainTimeoutMs);
    await deps.traffic.detach(v.version);
  }
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
 * Removes images of versions beyond the newest `keep` (by creation), except those still running.
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
    if (inUse.has(v.image.ref) || kept.has(v.image.ref) || removed.includes(v.image.ref)) continue;
    await deps.containers.removeImage(v.image.ref);
    removed.push(v.image.ref);
  }
  return removed;
}
