import { access, mkdir, open, readFile, rm } from "node:fs/promises";
import { CommandFailed, runChecked, startDetached, tail } from "../util/command.js";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile } from "../util/fs.js";
import type { MonitoringPaths } from "./paths.js";
import { connectHost } from "./render.js";
import type { MonitoringSettings } from "./schema.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function prometheusUrl(settings: MonitoringSettings): string {
  return `http://${connectHost(settings.listen.bind)}:${settings.listen.port}`;
}

/** The command line both supervisors run. */
export function prometheusArgs(settings: MonitoringSettings, paths: MonitoringPaths): string[] {
  return [
    `--config.file=${paths.config}`,
    `--storage.tsdb.path=${paths.data}`,
    `--storage.tsdb.retention.time=${settings.retention}`,
    `--web.listen-address=${settings.listen.bind}:${settings.listen.port}`,
    // POST /-/reload for tools that cannot send signals (the daemon path uses SIGHUP).
    "--web.enable-lifecycle",
  ];
}

/** Fails with one clear line when the binaries are missing. */
export async function requireBinaries(settings: MonitoringSettings): Promise<void> {
  for (const bin of [settings.prometheusBin, settings.promtoolBin]) {
    try {
      await access(bin);
    } catch {
      throw new UserError(`${bin} not found`, {
        exitCode: ExitCode.environment,
        hint: "install Prometheus (Debian/Ubuntu: apt-get install prometheus) or pass its path",
      });
    }
  }
}

/** `promtool check config` (which also checks the rule files): a broken file never reaches Prometheus. */
export async function checkConfig(settings: MonitoringSettings, configPath: string): Promise<void> {
  try {
    await runChecked(settings.promtoolBin, ["check", "config", configPath], { timeoutMs: 60_000 });
  } catch (err) {
    const detail = err instanceof CommandFailed ? tail(err.result) || err.message : (err as Error).message;
    throw new UserError(`promtool rejects ${configPath}: ${detail}`, { exitCode: ExitCode.environment });
  }
}

/** PID of our Prometheus if alive (pidfile + /proc cmdline, so a reused pid is not mistaken for it). */
export async function runningPid(paths: MonitoringPaths): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number((await readFile(paths.pidfile, "utf8")).trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    return cmdline.some((a) => a.includes("prometheus")) && cmdline.includes(`--config.file=${paths.config}`)
      ? pid
      : undefined;
  } catch {
    return undefined;
  }
}

/** True once Prometheus has loaded its config and TSDB (GET /-/ready answers 200). */
export async function isReady(settings: MonitoringSettings): Promise<boolean> {
  try {
    const res = await fetch(`${prometheusUrl(settings)}/-/ready`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Starts Prometheus detached from this process (own session, output to prometheus.log) and waits
 * until it is ready. Outlives the CLI, not a CI job: GitHub's runner ends processes a job started
 * (use the systemd supervisor on a runner host).
 */
export async function launchDaemon(
  settings: MonitoringSettings,
  paths: MonitoringPaths,
  timeoutMs = 30_000,
): Promise<number> {
  await mkdir(paths.data, { recursive: true });
  const log = await open(paths.log, "a");
  let child: Awaited<ReturnType<typeof startDetached>>;
  try {
    child = await startDetached(settings.prometheusBin, prometheusArgs(settings, paths), { logFd: log.fd });
  } finally {
    await log.close();
  }
  const pid = child.pid;
  await atomicWriteFile(paths.pidfile, `${pid}\n`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const exited = child.exitCode();
    if (exited !== undefined) throw await startFailure(paths, `Prometheus exited with code ${exited}`);
    if (await isReady(settings)) return pid;
    await sleep(200);
  }
  throw await startFailure(paths, `Prometheus not ready within ${Math.round(timeoutMs / 1000)} s`);
}

/** One line that says why: Prometheus' last error from its log. */
async function startFailure(paths: MonitoringPaths, what: string): Promise<UserError> {
  const lines = (await readFile(paths.log, "utf8").catch(() => "")).trim().split("\n");
  const last = [...lines].reverse().find((l) => /level=(error|fatal)|err=/.test(l)) ?? lines.at(-1) ?? "";
  const reason = /err="?([^"]+)"?/.exec(last)?.[1] ?? last;
  return new UserError(`${what}${reason ? `: ${reason}` : ""}`, {
    exitCode: ExitCode.environment,
    hint: `full log: ${paths.log}`,
  });
}

/** SIGHUP: re-read prometheus.yml and the rules without losing data, then wait for it to answer. */
export async function reloadDaemon(settings: MonitoringSettings, pid: number): Promise<void> {
  process.kill(pid, "SIGHUP");
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await isReady(settings)) return;
    await sleep(100);
  }
  throw new UserError("Prometheus did not answer after a reload", { exitCode: ExitCode.environment });
}

/** SIGTERM and wait (bounded) until it has flushed and exited. */
export async function stopDaemon(paths: MonitoringPaths, timeoutMs = 15_000): Promise<boolean> {
  const pid = await runningPid(paths);
  if (pid === undefined) return false;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await runningPid(paths)) === undefined) break;
    await sleep(100);
  }
  if ((await runningPid(paths)) !== undefined) process.kill(pid, "SIGKILL");
  await rm(paths.pidfile, { force: true });
  return true;
}

/**
 * A unit for hosts where systemd is PID 1 (a self-hosted runner): the service manager owns
 * Prometheus, so it survives the job that configured it. Reload = SIGHUP.
 */
export function renderPrometheusUnit(settings: MonitoringSettings, paths: MonitoringPaths): string {
  return `# Generated by \`modelship host init --monitoring\`.
[Unit]
Description=modelship monitoring (Prometheus)
After=network-online.target
Wants=network-online.target

[Service]
ExecStartPre=${settings.promtoolBin} check config ${paths.config}
ExecStart=${settings.prometheusBin} ${prometheusArgs(settings, paths).join(" ")}
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}

export { systemctl } from "../router/process.js";
