import { mkdir, readFile } from "node:fs/promises";
import { Router } from "../router/router.js";

export interface RouterRepair {
  actions: string[];
  pid: number;
  servers: number;
}

/**
 * Reconciles HAProxy with the router's desired state: rewrites the config from it, starts HAProxy if
 * it is down, and pushes any drift (servers, weights, states) through the runtime API. The deploy
 * ledger's repair decides the desired state first (it may change it), then calls this.
 */
export async function repairRouter(stateDir: string, router?: Router): Promise<RouterRepair> {
  await mkdir(stateDir, { recursive: true, mode: 0o750 });
  const r = router ?? (await Router.open(stateDir));
  const actions: string[] = [];
  const desired = await r.readDesired();
  const before = await r.running();
  const configBefore = await readFile(r.paths.config, "utf8").catch(() => "");
  const result = await r.apply(desired);
  const configAfter = await readFile(r.paths.config, "utf8");
  // Server lines were pushed live; anything else (ports, timeouts) needs the process to re-read the file.
  if (!result.started && withoutServers(configBefore) !== withoutServers(configAfter)) {
    const reloaded = await r.reload();
    actions.push(
      `reloaded HAProxy with the rewritten config (pid ${reloaded.previousPid} → ${reloaded.pid})`,
    );
  }
  if (result.started)
    actions.push(before ? "restarted HAProxy (runtime API did not answer)" : "started HAProxy");
  for (const cmd of result.commands) actions.push(`runtime API: ${cmd}`);
  for (const name of result.pendingRemoval)
    actions.push(`${name} still has connections; removed at next reload`);
  const live = await r.running();
  return { actions, pid: live?.pid ?? 0, servers: desired.servers.length };
}

const withoutServers = (config: string) =>
  config
    .split("\n")
    .filter((l) => !l.trimStart().startsWith("server "))
    .join("\n");
