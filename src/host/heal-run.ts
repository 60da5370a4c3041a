import { createServer } from "node:net";
import type { Engine } from "../engine/engine.js";
import { lastErrorLine, serverHardening } from "../image/build.js";
import { MODEL_LABELS } from "../image/labels.js";
import type { OperationHandle } from "../ledger/ledger.js";
import type { ContainerRun, LedgerData } from "../ledger/schema.js";
import type { RolloutSettings } from "../rollout/settings.js";
import { freePort, runServing, SERVED_LABELS } from "../rollout/wiring.js";
import type { Router } from "../router/router.js";
import { waitForReady } from "../smoke/smoke.js";
import {
  DEFAULT_HEAL_POLICY,
  describeHeal,
  HEALED_ROLES,
  type HealAction,
  type HealPolicy,
  type LiveState,
  planHeal,
} from "./heal.js";

/**
 * Self-healing, the doing half: reads what the engine says about every container the ledger wants,
 * runs planHeal's actions (each restart recorded in the ledger as soon as the engine started the
 * container, so one that dies on start still counts against the rate limit; an engine outage does not), waits for the server to answer /ready and for HAProxy's
 * health check to mark it UP, and puts it back in HAProxy when it was missing or moved port.
 * Runs under the operation lock (`host repair`, `host watch`).
 */
export interface HealContext {
  engine: Engine;
  router: Router;
  op: OperationHandle;
  stateDir: string;
  settings: RolloutSettings;
  policy?: HealPolicy;
  now?: () => number;
}

export interface HealOutcome {
  /** One sentence per action, with how it ended. */
  actions: string[];
  /** Versions brought back and healthy. */
  healed: string[];
  /** Versions reported as crash-looping (not restarted) or that failed to come back. */
  failed: string[];
}

/** What the engine says about each container the ledger wants running, by name. */
export async function liveStates(engine: Engine, ledger: LedgerData): Promise<Record<string, LiveState>> {
  const out: Record<string, LiveState> = {};
  for (const v of ledger.versions) {
    if (!HEALED_ROLES.includes(v.role) || !v.container) continue;
    const s = await engine.inspectContainer(v.container.name);
    out[v.container.name] = !s ? "missing" : s.running ? "running" : s.restarting ? "restarting" : "stopped";
  }
  return out;
}

export async function heal(ctx: HealContext): Promise<HealOutcome> {
  const policy = ctx.policy ?? DEFAULT_HEAL_POLICY;
  const now = ctx.now ?? Date.now;
  const ledger = await ctx.op.ledger.read();
  const plan = planHeal(ledger, await liveStates(ctx.engine, ledger), now(), policy);
  const outcome: HealOutcome = { actions: [], healed: [], failed: [] };
  for (const action of plan) {
    const what = describeHeal(action, policy);
    if (action.kind === "give-up") {
      outcome.actions.push(what);
      outcome.failed.push(action.version);
      continue;
    }
    // A restart counts towards "keeps dying" once the engine has started the container (so one that
    // dies on start still counts), not when the engine itself failed to start it (an outage, a reboot
    // in progress): else the engine restarting would spend the budget and the watcher would give up.
    const at = new Date(now()).toISOString();
    let recorded = false;
    const started = async () => {
      await ctx.op.update((l) => {
        l.history.push({
          at,
          kind: "restart",
          version: action.version,
          reason: `${action.kind === "start" ? "stopped" : "gone"}; restart ${action.restarts + 1} of ${policy.maxRestarts} allowed per ${Math.round(policy.windowMs / 60_000)} min`,
        });
      });
      recorded = true;
    };
    try {
      const detail = await bringBack(ctx, action, started);
      outcome.actions.push(`${what}: ${detail}`);
      outcome.healed.push(action.version);
    } catch (err) {
      // Started, then the engine went away before it was back (waiting for ready asks the engine):
      // the container did not die either.
      const engineDown = !(await ctx.engine.answers().catch(() => false));
      if (recorded && engineDown)
        await ctx.op.update((l) => {
          const i = l.history.findIndex(
            (h) => h.kind === "restart" && h.at === at && h.version === action.version,
          );
          if (i >= 0) l.history.splice(i, 1);
        });
      const note = engineDown ? " (engine not reachable: not counted against the restart limit)" : "";
      outcome.actions.push(`${what}: failed${note}: ${(err as Error).message}`);
      outcome.failed.push(action.version);
    }
  }
  return outcome;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Defaults for a container recorded before run settings were (ledgers from older versions). */
function defaultRun(ctx: HealContext, version: string): ContainerRun {
  const c = ctx.settings.container;
  return {
    containerPort: c.port,
    memory: c.memory,
    cpus: c.cpus,
    restart: c.restart,
    stopTimeoutSec: 15,
    hardening: serverHardening(c.workers),
    labels: {
      [SERVED_LABELS.role]: "served",
      [SERVED_LABELS.stateDir]: ctx.stateDir,
      [MODEL_LABELS.version]: version,
    },
    env: { MODELSHIP_WORKERS: String(c.workers) },
  };
}

async function bringBack(
  ctx: HealContext,
  action: Exclude<HealAction, { kind: "give-up" }>,
  started: () => Promise<void>,
): Promise<string> {
  const { engine } = ctx;
  let { id, hostPort } = action.container;
  const name = action.container.name;
  if (action.kind === "start") {
    await engine.start(name);
    await started();
  } else {
    const run = action.container.run ?? defaultRun(ctx, action.version);
    if (!(await portFree(hostPort))) hostPort = await freePort();
    await engine.remove(name, { force: true });
    id = await runServing(engine, action.image, name, hostPort, run);
    await started();
    await ctx.op.update((l) => {
      const v = l.versions.find((x) => x.version === action.version);
      if (v?.container) v.container = { ...v.container, id, hostPort };
    });
  }
  const readyMs = await waitForReady(`http://127.0.0.1:${hostPort}`, {
    timeoutMs: ctx.settings.readyTimeoutMs,
    intervalMs: 100,
    isAlive: async () => {
      const state = await engine.inspectContainer(id);
      if (state?.running) return null;
      const logs = await engine.logs(id, { tail: 30 }).catch(() => "");
      return `container exited with code ${state?.exitCode ?? "?"}: ${lastErrorLine(logs)}`;
    },
  });
  // Back in HAProxy: still there (DOWN) is the usual case and the health check brings it UP; missing or
  // on another port, it is (re)added — regular at weight 0 (the ledger's reconcile sets the weights),
  // the standby as backup.
  const spec = (await ctx.router.readDesired()).servers.find((s) => s.name === action.version);
  let routed = "in HAProxy";
  if (!spec || spec.port !== hostPort) {
    const backup = action.role === "standby";
    await ctx.router.upsertServer({
      name: action.version,
      address: "127.0.0.1",
      port: hostPort,
      weight: spec ? spec.weight : backup ? 100 : 0,
      state: "ready",
      backup: spec ? spec.backup : backup,
    });
    routed = spec ? `HAProxy server moved to port ${hostPort}` : "added back to HAProxy";
  }
  const health = await ctx.router.waitHealthy(action.version, ctx.settings.healthTimeoutMs);
  if (!health.healthy)
    throw new Error(`ready in ${(readyMs / 1000).toFixed(1)}s but HAProxy still sees ${health.status}`);
  return `ready in ${(readyMs / 1000).toFixed(1)}s, ${routed}, UP after ${(health.waitedMs / 1000).toFixed(1)}s`;
}
