import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CommandFailed, CommandNotFound, runChecked, systemExecutable } from "../util/command.js";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile } from "../util/fs.js";
import type { RouterPaths } from "./config.js";
import { RuntimeApi } from "./runtime-api.js";
import type { RouterSettings } from "./schema.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RunningInfo {
  pid: number;
  configPath: string | undefined;
}

/** The haproxy executable: from fixed root-owned system directories only (never from the state dir). */
export async function haproxyBinary(): Promise<string> {
  const bin = await systemExecutable("haproxy");
  if (!bin)
    throw new UserError("HAProxy not found in the system directories (/usr/sbin, /usr/bin, …)", {
      exitCode: ExitCode.environment,
      hint: "install it: `sudo apt-get install haproxy` (2.6+)",
    });
  return bin;
}

/**
 * The user HAProxy drops to after binding: the settings' `runAs`, else `haproxy` when we are root and
 * that account exists; undefined = keep the current user (not root, or no such account).
 */
export async function effectiveRunAs(settings: RouterSettings): Promise<string | undefined> {
  if (settings.runAs === "root") return undefined;
  const root = process.geteuid?.() === 0;
  // A daemon we start as another user cannot switch users (HAProxy would refuse to start); systemd
  // starts the unit as root, so its config keeps the recorded account whoever renders it.
  if (!root && settings.supervisor === "daemon") return undefined;
  if (settings.runAs) return settings.runAs;
  if (!root) return undefined;
  const passwd = await readFile("/etc/passwd", "utf8").catch(() => "");
  const group = await readFile("/etc/group", "utf8").catch(() => "");
  const has = (text: string, name: string) => text.split("\n").some((l) => l.startsWith(`${name}:`));
  return has(passwd, "haproxy") && has(group, "haproxy") ? "haproxy" : undefined;
}

/**
 * Process supervision of the HAProxy behind a state dir: config checks, start (detached daemon or the
 * systemd unit), seamless reload, stop, and "is it ours and alive". Knows nothing of servers/weights.
 */
export class HaproxyProcess {
  readonly api: RuntimeApi;

  constructor(
    readonly settings: RouterSettings,
    readonly paths: RouterPaths,
  ) {
    this.api = new RuntimeApi(paths.socket);
  }

  /**
   * Checks a config with `haproxy -c`; HAProxy's own complaint becomes the error message. The file is
   * written into a fresh private (0700, random name) directory, so no other user can swap it.
   */
  async validate(config: string): Promise<void> {
    const bin = await haproxyBinary();
    const dir = await mkdtemp(join(tmpdir(), "modelship-haproxy-check-"));
    const file = join(dir, "haproxy.cfg");
    try {
      await writeFile(file, config, { flag: "wx", mode: 0o600 });
      await runChecked(bin, ["-c", "-q", "-f", file], { timeoutMs: 30_000 });
    } catch (err) {
      if (err instanceof CommandNotFound) throw haproxyMissing(bin);
      if (!(err instanceof CommandFailed)) throw err;
      throw new UserError(`HAProxy rejects the generated config: ${alertLine(err, "haproxy -c failed")}`, {
        exitCode: ExitCode.usage,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** PID of our HAProxy if it is alive (pidfile + /proc), with the config it was started with. */
  async running(): Promise<RunningInfo | undefined> {
    let pid: number;
    try {
      pid = Number((await readFile(this.paths.pidfile, "utf8")).trim().split(/\s+/)[0]);
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    let cmdline: string[];
    try {
      cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    } catch {
      return undefined;
    }
    if (!cmdline.some((a) => a.includes("haproxy"))) return undefined; // pid reused by something else
    const f = cmdline.indexOf("-f");
    return { pid, configPath: f >= 0 ? cmdline[f + 1] : undefined };
  }

  /** True when the admin socket answers. */
  async answers(): Promise<boolean> {
    try {
      return (await this.api.send("show info")).includes("Name: HAProxy");
    } catch {
      return false;
    }
  }

  /** Cold start from the config file (the config is the truth: stale server state is dropped). */
  async start(): Promise<number> {
    await mkdir(dirname(this.paths.config), { recursive: true, mode: 0o750 });
    await atomicWriteFile(this.paths.serverState, "1\n");
    if (this.settings.supervisor === "systemd") {
      await systemctl("start", this.settings.systemdUnit);
    } else {
      await rm(this.paths.socket, { force: true });
      await this.launch(["-f", this.paths.config, "-D"]);
    }
    return this.waitAnswering();
  }

  /**
   * Seamless reload of the running process `old`: the new process takes the listening sockets over the
   * admin socket (-x, needs `expose-fd listeners`), then tells the old one to finish its connections
   * and exit (-sf). Resolves with the new pid once it answers.
   */
  async reload(old: RunningInfo): Promise<number> {
    if (this.settings.supervisor === "systemd") {
      await systemctl("reload", this.settings.systemdUnit);
    } else {
      await this.launch(["-f", this.paths.config, "-D", "-x", this.paths.socket, "-sf", String(old.pid)]);
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      const now = await this.running();
      const replaced = now && now.pid !== old.pid && (await this.answers());
      // master-worker (systemd) keeps the master pid
      const reloadedInPlace = this.settings.supervisor === "systemd" && now && (await this.answers());
      if (now && (replaced || reloadedInPlace)) return now.pid;
      if (Date.now() > deadline) {
        throw new UserError("HAProxy did not come back after reload within 10s", {
          exitCode: ExitCode.environment,
          hint: "run `modelship host check`",
        });
      }
      await sleep(50);
    }
  }

  /** Stops our HAProxy; in-flight requests are finished (soft stop), then it is killed. */
  async stop(): Promise<void> {
    if (this.settings.supervisor === "systemd") {
      await systemctl("stop", this.settings.systemdUnit);
      return;
    }
    const live = await this.running();
    if (!live) return;
    process.kill(live.pid, "SIGUSR1");
    const deadline = Date.now() + this.settings.timeouts.hardStopAfterMs + 2_000;
    while (Date.now() < deadline) {
      if (!(await this.running())) return;
      await sleep(50);
    }
    process.kill(live.pid, "SIGKILL");
  }

  private async launch(args: string[]): Promise<void> {
    const bin = await haproxyBinary();
    // GitHub's runner kills every process carrying its RUNNER_TRACKING_ID when the job ends; HAProxy
    // must outlive the job, so it does not inherit it (-D also detaches it from our session).
    const env = { ...process.env };
    delete env.RUNNER_TRACKING_ID;
    try {
      await runChecked(bin, args, { env, timeoutMs: 15_000 });
    } catch (err) {
      if (err instanceof CommandNotFound) throw haproxyMissing(bin);
      if (!(err instanceof CommandFailed)) throw err;
      throw new UserError(`HAProxy failed to start: ${alertLine(err, "no output")}`, {
        exitCode: ExitCode.environment,
        hint: `is port ${this.settings.edge.port} or ${this.settings.metrics.port} in use? \`modelship host check\``,
      });
    }
  }

  private async waitAnswering(): Promise<number> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const live = await this.running();
      if (live && (await this.answers())) return live.pid;
      if (Date.now() > deadline) {
        throw new UserError("HAProxy started but its runtime API does not answer", {
          exitCode: ExitCode.environment,
          hint: `check ${this.paths.socket} and \`modelship host check\``,
        });
      }
      await sleep(50);
    }
  }
}

/** HAProxy's ALERT lines (what it says is wrong), else the last line it printed. */
export function alertLine(err: CommandFailed, fallback: string): string {
  const out = `${err.stderr}\n${err.stdout}`;
  const alerts = out.split("\n").filter((l) => l.includes("ALERT"));
  const text = alerts.length > 0 ? alerts.join(" ") : out.trim().split("\n").at(-1) || fallback;
  return text.replace(/\s+/g, " ").trim();
}

function haproxyMissing(bin: string): UserError {
  return new UserError(`HAProxy cannot be run at ${bin}`, {
    exitCode: ExitCode.environment,
    hint: "install it: `sudo apt-get install haproxy` (2.6+)",
  });
}

export async function systemctl(...args: string[]): Promise<void> {
  const bin = (await systemExecutable("systemctl")) ?? "systemctl";
  try {
    await runChecked(bin, args, { timeoutMs: 30_000 });
  } catch (err) {
    const detail = err instanceof CommandFailed ? err.message : (err as Error).message;
    throw new UserError(`systemctl ${args.join(" ")} failed: ${detail.split("\n")[0]}`, {
      exitCode: ExitCode.environment,
      hint: `see \`journalctl -u ${args.at(-1)}\``,
    });
  }
}
