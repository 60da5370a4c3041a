import { closeSync, existsSync, openSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Engine } from "../engine/engine.js";
import { Ledger } from "../ledger/ledger.js";
import { Router } from "../router/router.js";
import { runChecked, startDetached } from "../util/command.js";
import { atomicWriteFile } from "../util/fs.js";
import { DEFAULT_HEAL_POLICY, describeHeal, type HealPolicy, planHeal } from "./heal.js";
import { liveStates } from "./heal-run.js";
import { repairRouter } from "./repair.js";
import { repairLedger } from "./repair-ledger.js";
import { UNIT_DIR } from "./systemd.js";

/**
 * The periodic self-healing check: every interval, are the containers the ledger wants running and is
 * HAProxy answering? If not (seen on `graceChecks + 1` consecutive checks, so a container the engine is
 * restarting by itself or a deploy's own stop is left alone), it runs `host repair` — without waiting
 * for the operation lock: a deploy or rollback in progress is skipped, never blocked.
 * Installed by `host init`: a systemd timer (`host watch --once`) where systemd runs, else this loop as
 * a detached process of its own (pidfile in the state dir; it exits when the state dir goes away).
 */
export const WATCH_PIDFILE = "watch.pid";
export const WATCH_LOG = "watch.log";
export const HEAL_UNIT = "modelship-heal";

export interface WatchOptions {
  stateDir: string;
  intervalMs: number;
  /** Consecutive checks that must see the problem before repairing (the loop; --once acts at once). */
  graceChecks?: number;
  policy?: HealPolicy;
  log?: (line: string) => void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The give-up message last logged by the loop owning a `seen` map (said once, again when it changes). */
const seenGiveUp = new WeakMap<Map<string, number>, string>();

/** One check; returns what it saw/did in one line (null: all well). `seen` carries the grace count. */
export async function watchCheck(options: WatchOptions, seen: Map<string, number>): Promise<string | null> {
  const { stateDir } = options;
  const policy = options.policy ?? DEFAULT_HEAL_POLICY;
  const ledger = await new Ledger(stateDir).read();
  const op = ledger.operation;
  // A deploy/rollback at work is left alone. Our own pid there is a repair of ours that failed (engine
  // down): the next repair takes it over as interrupted.
  if (op && op.host === hostname() && op.pid !== process.pid && pidAlive(op.pid)) return null;
  const router = await Router.open(stateDir);
  const problems: string[] = [];
  const live = await liveStates(new Engine(), ledger);
  const giveUps: string[] = [];
  for (const a of planHeal(ledger, live, Date.now(), policy))
    if (a.kind === "give-up") giveUps.push(describeHeal(a, policy));
    else problems.push(`${a.role} ${a.version} ${live[a.container.name] ?? "missing"}`);
  if (!(await router.answers())) problems.push("HAProxy not answering");
  // A crash-looping container is left alone, but said once (not at every check) so the log explains it.
  const givenUp = giveUps.join("; ");
  const newGiveUp = givenUp !== "" && givenUp !== seenGiveUp.get(seen);
  if (givenUp === "") seenGiveUp.delete(seen);
  else seenGiveUp.set(seen, givenUp);
  if (problems.length === 0) {
    seen.clear();
    return newGiveUp ? `not restarting: ${givenUp}` : null;
  }
  const key = problems.join(", ");
  const count = (seen.get(key) ?? 0) + 1;
  seen.clear();
  seen.set(key, count);
  if (count <= (options.graceChecks ?? 0)) return `noticed: ${key} (repairing if still so at the next check)`;
  seen.clear();
  const ledgerRepair = await repairLedger(stateDir, { wait: false, heal: policy });
  const routerRepair = await repairRouter(stateDir);
  const actions = [...ledgerRepair.actions, ...routerRepair.actions];
  return `repaired (${key}): ${actions.join("; ") || "nothing left to do"}`;
}

/** The loop behind `modelship host watch`. Resolves when the state dir is gone or `signal` aborts. */
export async function runWatch(options: WatchOptions, signal?: AbortSignal): Promise<void> {
  const log = options.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const seen = new Map<string, number>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        signal?.removeEventListener("abort", wake);
        resolve();
      }, ms);
      signal?.addEventListener("abort", wake, { once: true });
    });
  while (!signal?.aborted) {
    if (!existsSync(options.stateDir)) {
      log(`${new Date().toISOString()} state dir ${options.stateDir} is gone; stopping`);
      return;
    }
    try {
      const line = await watchCheck(options, seen);
      if (line) log(`${new Date().toISOString()} ${line}`);
    } catch (err) {
      // Engine down, lock busy, HAProxy missing: say so and try again at the next check.
      log(`${new Date().toISOString()} check failed: ${(err as Error).message.split("\n")[0]}`);
    }
    await sleep(options.intervalMs);
  }
}

/** bin/modelship.js of this installation (for units and the detached watcher). */
export function modelshipBin(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "bin", "modelship.js"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find bin/modelship.js above this module");
    dir = up;
  }
  return join(dir, "bin", "modelship.js");
}

export function renderHealUnits(opts: {
  stateDir: string;
  intervalSec: number;
  node: string;
  bin: string;
  dockerHost?: string;
}): { service: string; timer: string } {
  const env = opts.dockerHost ? `Environment="DOCKER_HOST=${opts.dockerHost}"\n` : "";
  const service = `# Generated by \`modelship host init\`: one self-healing check (see ${HEAL_UNIT}.timer).
[Unit]
Description=modelship self-healing check (${opts.stateDir})
After=network-online.target modelship-haproxy.service

[Service]
Type=oneshot
${env}ExecStart=${opts.node} ${opts.bin} host watch --once --state-dir ${opts.stateDir}
`;
  const timer = `# Generated by \`modelship host init\`: brings back containers and HAProxy after a crash or reboot.
[Unit]
Description=modelship self-healing check every ${opts.intervalSec}s (${opts.stateDir})

[Timer]
OnBootSec=20s
OnUnitActiveSec=${opts.intervalSec}s
AccuracySec=1s

[Install]
WantedBy=timers.target
`;
  return { service, timer };
}

export interface WatchInstall {
  kind: "systemd" | "process";
  detail: string;
}

/** Installs the periodic check for `stateDir`: a systemd timer, or the detached `host watch` loop. */
export async function installWatch(
  stateDir: string,
  supervisor: "systemd" | "daemon",
  intervalSec = 30,
): Promise<WatchInstall> {
  const bin = modelshipBin();
  if (supervisor === "systemd") {
    const units = renderHealUnits({
      stateDir,
      intervalSec,
      node: process.execPath,
      bin,
      ...(process.env.DOCKER_HOST ? { dockerHost: process.env.DOCKER_HOST } : {}),
    });
    await atomicWriteFile(join(UNIT_DIR, `${HEAL_UNIT}.service`), units.service);
    await atomicWriteFile(join(UNIT_DIR, `${HEAL_UNIT}.timer`), units.timer);
    await runChecked("systemctl", ["daemon-reload"]);
    await runChecked("systemctl", ["enable", "--now", `${HEAL_UNIT}.timer`]);
    return { kind: "systemd", detail: `${HEAL_UNIT}.timer every ${intervalSec}s` };
  }
  const pidfile = join(stateDir, WATCH_PIDFILE);
  await stopWatch(stateDir);
  const fd = openSync(join(stateDir, WATCH_LOG), "a");
  const child = await startDetached(
    process.execPath,
    [bin, "host", "watch", "--state-dir", stateDir, "--interval", `${intervalSec}s`],
    { logFd: fd, env: outlivingEnv() },
  ).finally(() => closeSync(fd));
  await writeFile(pidfile, `${child.pid}\n`);
  return {
    kind: "process",
    detail: `pid ${child.pid} every ${intervalSec}s, log ${join(stateDir, WATCH_LOG)}`,
  };
}

/** The environment of a process that must outlive a GitHub job (the runner kills its tracked ones). */
export function outlivingEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.RUNNER_TRACKING_ID;
  return env;
}

/** Stops the detached watcher of `stateDir`, if one runs. */
export async function stopWatch(stateDir: string): Promise<boolean> {
  const pidfile = join(stateDir, WATCH_PIDFILE);
  const pid = Number((await readFile(pidfile, "utf8").catch(() => "")).trim());
  await rm(pidfile, { force: true });
  if (!Number.isInteger(pid) || pid <= 1 || !pidAlive(pid)) return false;
  // Only our watcher: a recycled pid belongs to someone else.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.includes("watch")) return false;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return true;
}
