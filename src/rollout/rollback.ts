import { identityMismatch } from "../image/labels.js";
import type { OperationHandle } from "../ledger/ledger.js";
import type { LedgerData, VersionEntry } from "../ledger/schema.js";
import { ExitCode, UserError } from "../util/errors.js";
import type { Reporter } from "../util/progress.js";
import { drainToStandby, routerWeights } from "./deploy.js";
import type { RolloutDeps, RunningContainer } from "./ports.js";
import { reconcile, retire, takeOut } from "./reconcile.js";
import type { RolloutSettings } from "./settings.js";

export interface RollbackOutcome {
  version: string;
  from: string;
  mode: "warm" | "cold";
  /** Time from the decision to flip until HAProxy sends all new requests to the target. */
  switchMs: number;
  /** From the start until all new requests go to the target (production restored). */
  restoredMs: number;
  /** Whole operation, including draining the old version afterwards. */
  totalMs: number;
  by: string;
  reason: string;
  edge: { url: string; requests: number; failed: number };
  /** What repair found wrong and left alone before the rollback. */
  warnings: string[];
}

const nowIso = () => new Date().toISOString();

/** The version to roll back to: `--to` (exact or unique prefix), else the warm standby, else the newest retired. */
export function pickTarget(ledger: LedgerData, current: VersionEntry, to?: string): VersionEntry {
  if (to) {
    const exact = ledger.versions.find((v) => v.version === to);
    const matches = exact ? [exact] : ledger.versions.filter((v) => v.version.startsWith(to));
    if (matches.length === 0) {
      throw new UserError(`no version '${to}' in the ledger`, {
        exitCode: ExitCode.usage,
        hint: `known: ${ledger.versions.map((v) => v.version).join(", ") || "none"} (see \`modelship status\`)`,
      });
    }
    if (matches.length > 1)
      throw new UserError(
        `'${to}' matches ${matches.length} versions: ${matches.map((v) => v.version).join(", ")}`,
      );
    const target = matches[0]!;
    if (target.version === current.version)
      throw new UserError(`${target.version} is already the stable version`, { exitCode: ExitCode.usage });
    return target;
  }
  const candidates = ledger.versions
    .filter((v) => v.version !== current.version && (v.role === "standby" || v.role === "retired"))
    .sort((a, b) => {
      if (a.role !== b.role) return a.role === "standby" ? -1 : 1;
      return (b.promotedAt ?? b.createdAt).localeCompare(a.promotedAt ?? a.createdAt);
    });
  const target = candidates[0];
  if (!target)
    throw new UserError(`no previous version to roll back to (only ${current.version} was ever promoted)`, {
      exitCode: ExitCode.usage,
    });
  return target;
}

/**
 * Rolls back to a previous version. Warm standby (running, behind the router at weight 0): a weight
 * flip. Otherwise: a container from the ledger's image, ready, health-checked, then the flip. The
 * version rolled back from is drained and kept as the warm standby, so rolling forward is instant too.
 */
export async function runRollback(input: {
  deps: RolloutDeps;
  op: OperationHandle;
  settings: RolloutSettings;
  to?: string;
  reason: string;
  by: string;
  reporter: Reporter;
}): Promise<RollbackOutcome> {
  const { deps, op, settings, reporter } = input;
  const { traffic, containers, clock } = deps;
  const started = clock.now();
  await op.advance({ name: "reconciling" });
  const repaired = await reconcile(deps, op, settings);
  for (const line of repaired.actions) reporter.warn(`repair: ${line}`);
  for (const line of repaired.warnings) reporter.warn(line);
  const edgeStart = await traffic.edgeCounters();
  const ledger = await op.ledger.read();
  const current = ledger.versions.find((v) => v.role === "stable");
  if (!current) {
    throw new UserError("nothing is deployed: there is no stable version to roll back from", {
      exitCode: ExitCode.usage,
      hint: "deploy first with `modelship deploy`",
    });
  }
  const target = pickTarget(ledger, current, input.to);
  const servers = new Set(await traffic.servers());
  const warm =
    target.role === "standby" &&
    target.container !== null &&
    servers.has(target.version) &&
    (await containers.isRunning(target.container));

  let container: RunningContainer | null = warm ? target.container : null;
  if (!warm) {
    await reporter
      .step(
        `Starting ${target.version} from ${target.image.ref}`,
        async (update) => {
          if (target.container || servers.has(target.version)) await takeOut(deps, target, servers, settings);
          await op.advance({
            name: "starting",
            version: target.version,
            container: containers.nameFor(target.version),
          });
          update("starting container");
          const c = await containers.start({
            version: target.version,
            image: target.image,
            model: target.model,
            card: null,
          });
          container = c;
          await op.update((l) => {
            const v = l.versions.find((x) => x.version === target.version);
            if (v) Object.assign(v, { container: c, updatedAt: nowIso() });
          });
          update("waiting for ready");
          const readyMs = await containers.waitReady(c, settings.readyTimeoutMs);
          await op.advance({ name: "verifying", version: target.version });
          if (target.model) {
            const wrong = identityMismatch(target.model, await containers.modelInfo(c));
            if (wrong.length > 0)
              throw new UserError(
                `${target.image.ref} no longer serves the model the ledger recorded for ${target.version}: ${wrong.join("; ")}; ${current.version} keeps serving`,
                { exitCode: ExitCode.failed },
              );
          }
          await op.advance({ name: "attaching", version: target.version });
          // As a backup: whatever order HAProxy applies the flip in, some server always takes requests.
          await traffic.attach(target.version, c.hostPort, { backup: true });
          if (!(await traffic.waitHealthy(target.version, settings.healthTimeoutMs)))
            throw new UserError(`${target.version} did not pass HAProxy's health check`, {
              exitCode: ExitCode.failed,
            });
          return readyMs;
        },
        (ms) => `(ready in ${(ms / 1000).toFixed(1)}s)`,
      )
      .catch(async (err) => {
        if (container) await containers.stopAndRemove(container).catch(() => {});
        await op.update((l) => {
          const v = l.versions.find((x) => x.version === target.version);
          if (v) Object.assign(v, { container: null, updatedAt: nowIso() });
        });
        throw err instanceof UserError
          ? err
          : new UserError(
              `rollback to ${target.version} failed: ${(err as Error).message}; ${current.version} keeps serving`,
              {
                exitCode: ExitCode.failed,
              },
            );
      });
  }

  const standbyUntil = new Date(clock.now() + settings.standbyWindowMs).toISOString();
  let restoredMs = 0;
  const switchMs = await reporter.step(
    `Switching traffic to ${target.version} (${warm ? "warm standby" : "cold start"})`,
    async () => {
      await op.advance({ name: "switching", version: target.version, from: current.version });
      const t0 = performance.now();
      // The ledger first, then the router from it (one source of weights).
      const written = await op.update((l) => {
        const at = nowIso();
        const t = l.versions.find((x) => x.version === target.version);
        if (t) {
          Object.assign(t, { role: "stable", weight: 100, promotedAt: at, updatedAt: at, container });
          delete t.standbyUntil;
          delete t.retiredAt;
        }
        const c = l.versions.find((x) => x.version === current.version);
        if (c) Object.assign(c, { role: "standby", weight: 0, standbyUntil, updatedAt: at });
        l.history.push({
          at,
          kind: "rollback",
          version: target.version,
          from: current.version,
          by: input.by,
          reason: input.reason,
        });
      });
      await traffic.setWeights(routerWeights(written, [target.version, current.version]));
      const ms = performance.now() - t0;
      restoredMs = clock.now() - started;
      return ms;
    },
    (ms) => `(switched in ${ms < 10 ? ms.toFixed(1) : Math.round(ms)}ms)`,
  );

  await traffic.activate(target.version);
  await drainToStandby(deps, op, settings, reporter, current.version);
  // One warm standby: the version just replaced.
  await op.advance({ name: "retiring" });
  for (const v of (await op.ledger.read()).versions) {
    if (v.role === "standby" && v.version !== current.version) {
      await takeOut(deps, v, undefined, settings);
      await op.update((l) => retire(l, v.version));
    }
  }
  const end = await traffic.edgeCounters();
  const edge = {
    url: traffic.edgeUrl(),
    requests: Math.max(0, end.requests - edgeStart.requests),
    failed: Math.max(0, end.failed - edgeStart.failed),
  };
  const totalMs = clock.now() - started;
  reporter.info(
    `Rolled back to ${target.version} (${warm ? "warm" : "cold"}: switch ${Math.round(switchMs)}ms, traffic restored after ${(restoredMs / 1000).toFixed(1)}s, done after ${(totalMs / 1000).toFixed(1)}s). ${edge.failed === 0 ? "Zero requests dropped" : `${edge.failed} requests failed at the edge`} (${edge.requests} requests meanwhile).`,
  );
  const outcome: RollbackOutcome = {
    version: target.version,
    from: current.version,
    mode: warm ? "warm" : "cold",
    switchMs,
    restoredMs,
    totalMs,
    by: input.by,
    reason: input.reason,
    edge,
    warnings: repaired.warnings,
  };
  reporter.event({ type: "rolled-back", ...outcome });
  return outcome;
}
