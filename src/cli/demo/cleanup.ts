import { existsSync } from "node:fs";
import { join } from "node:path";
import { Engine } from "../../engine/engine.js";
import { LEDGER_FILE, Ledger } from "../../ledger/ledger.js";
import { retire } from "../../rollout/reconcile.js";
import { SERVED_LABELS } from "../../rollout/wiring.js";
import { routerPaths } from "../../router/config.js";
import { Router } from "../../router/router.js";
import { pickDockerHost } from "./prerequisites.js";

export interface TeardownResult {
  containers: string[];
  retired: string[];
  haproxyStopped: boolean;
}

/**
 * Takes a demo host down: every serving container started for this state dir, the HAProxy entries
 * and process, and records it in the ledger (each running version retired) under the operation lock,
 * so the ledger stays valid and tells the truth: nothing serves any more. A lock left by an
 * interrupted deploy (dead process) is broken by `Ledger.begin`.
 */
export async function teardown(stateDir: string): Promise<TeardownResult> {
  const result: TeardownResult = { containers: [], retired: [], haproxyStopped: false };
  const hasLedger = existsSync(join(stateDir, LEDGER_FILE));
  const hasRouter = existsSync(routerPaths(stateDir).settings);
  if (!hasLedger && !hasRouter) return result;

  pickDockerHost(); // `demo --down` runs without the host check that sets it
  const ledger = new Ledger(stateDir);
  const op = await ledger.begin("repair", { wait: true, waitTimeoutMs: 30_000, by: "modelship demo" });
  try {
    await op.advance({ name: "retiring" });
    if (hasRouter) {
      const router = await Router.open(stateDir);
      if ((await router.readDesired()).servers.length > 0 && (await router.running()))
        await router.apply({ servers: [] });
      else await router.writeConfig({ servers: [] }).catch(() => {});
      if (await router.running()) {
        await router.stop();
        result.haproxyStopped = true;
      }
    }
    const engine = new Engine();
    const ours = await engine.listContainers({ labels: { [SERVED_LABELS.stateDir]: stateDir } });
    for (const c of ours) {
      await engine.remove(c.id, { force: true });
      result.containers.push(c.name);
    }
    await op.update((l) => {
      for (const v of l.versions) {
        if (v.container || v.role === "stable" || v.role === "standby" || v.role === "canary") {
          retire(l, v.version);
          result.retired.push(v.version);
        }
      }
    });
  } finally {
    await op.finish();
  }
  return result;
}
