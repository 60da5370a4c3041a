import { Engine } from "../engine/engine.js";
import { currentUser, Ledger } from "../ledger/ledger.js";
import { syncTargetsIfMonitored } from "../monitoring/targets.js";
import { RepairRefused, reconcile } from "../rollout/reconcile.js";
import { rolloutSettingsSchema } from "../rollout/settings.js";
import { realDeps } from "../rollout/wiring.js";
import { Router } from "../router/router.js";
import type { HealPolicy } from "./heal.js";
import { type HealOutcome, heal } from "./heal-run.js";

export interface LedgerRepair {
  actions: string[];
  /** What is wrong and was left alone on purpose (the last healthy server is never taken out), with fixes. */
  warnings: string[];
  /** The operation a crashed process left behind, if there was one. */
  interrupted: { kind: string; target?: string; step: string; pid: number } | null;
  /** Containers the ledger wants that were brought back (or reported as crash-looping). */
  heal: HealOutcome;
}

/**
 * The ledger half of `modelship host repair`: makes the ledger file readable again (backup; with no
 * usable backup it is rebuilt from the containers the edge routes to, or repair refuses), then under
 * the operation lock plans against what really runs (plan.ts) and applies the plan: an interrupted
 * operation resumed or unwound from its recorded phase, orphan containers removed, dead standbys
 * retired, detached ones re-attached, the stable version at 100% — never taking out the last healthy
 * server. Run before the router's own repair, which then applies this state.
 */
export async function repairLedger(
  stateDir: string,
  options: { wait?: boolean; heal?: HealPolicy } = {},
): Promise<LedgerRepair> {
  const ledger = new Ledger(stateDir);
  const file = await ledger.repairFile();
  const op = await ledger.begin("repair", {
    wait: options.wait,
    by: currentUser(),
    onChange: () => syncTargetsIfMonitored(stateDir),
  });
  try {
    const settings = rolloutSettingsSchema.parse({});
    const engine = await Engine.connect();
    const router = await Router.open(stateDir);
    const deps = realDeps(engine, router, stateDir, settings);
    // Containers first (stable, standby, canary back from their recorded image), so reconcile sees them alive.
    await router.ensureRunning();
    await op.advance({ name: "reconciling" });
    const healed = await heal({
      engine,
      router,
      op,
      stateDir,
      settings,
      ...(options.heal ? { policy: options.heal } : {}),
    });
    const reconciled = await reconcile(deps, op, settings);
    const actions = [...file.actions, ...healed.actions, ...reconciled.actions];
    const interrupted = op.interrupted
      ? {
          kind: op.interrupted.kind,
          target: op.interrupted.target,
          step: op.interrupted.step,
          pid: op.interrupted.pid,
        }
      : null;
    if (interrupted)
      actions.unshift(
        `found an interrupted ${interrupted.kind}${interrupted.target ? ` of ${interrupted.target}` : ""} (pid ${interrupted.pid}, stopped at "${interrupted.step}")`,
      );
    const all = [...actions, ...reconciled.warnings];
    await op.event({
      kind: "repair",
      reason: all.length ? all.join("; ").slice(0, 2000) : "nothing to repair",
    });
    await op.finish();
    return { actions, warnings: reconciled.warnings, interrupted, heal: healed };
  } catch (err) {
    if (err instanceof RepairRefused) await op.finish().catch(() => op.release());
    else await op.release();
    throw err;
  }
}
