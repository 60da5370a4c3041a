import { Engine } from "../engine/engine.js";
import type { HealPolicy } from "../host/heal.js";
import { type HealOutcome, heal } from "../host/heal-run.js";
import { currentUser, Ledger } from "../ledger/ledger.js";
import { syncTargetsIfMonitored } from "../monitoring/targets.js";
import { Router } from "../router/router.js";
import { reconcile } from "./reconcile.js";
import { rolloutSettingsSchema } from "./settings.js";
import { realDeps } from "./wiring.js";

export interface LedgerRepair {
  actions: string[];
  /** The operation a crashed process left behind, if there was one. */
  interrupted: { kind: string; target?: string; step: string; pid: number } | null;
  /** Containers the ledger wants that were brought back (or reported as crash-looping). */
  heal: HealOutcome;
}

/**
 * The ledger half of `modelship host repair`: makes the ledger file readable again (backup, or empty),
 * then under the operation lock takes out an unfinished canary, retires dead standbys, and gives the
 * stable version all traffic. Run before the router's own repair, which then applies this state.
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
    const healed = await heal({
      engine,
      router,
      op,
      stateDir,
      settings,
      ...(options.heal ? { policy: options.heal } : {}),
    });
    const actions = [...file.actions, ...healed.actions, ...(await reconcile(deps, op, settings))];
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
    await op.event({ kind: "repair", reason: actions.length ? actions.join("; ") : "nothing to repair" });
    await op.finish();
    return { actions, interrupted, heal: healed };
  } catch (err) {
    await op.release();
    throw err;
  }
}
