import { execFile } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import lockfile from "proper-lockfile";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile, atomicWriteJson } from "../util/fs.js";
import { type RouterPaths, renderConfig, routerPaths, serverKeywords } from "./config.js";
import { RuntimeApi } from "./runtime-api.js";
import {
  BACKEND,
  percentToWeight,
  RouterDesired,
  type RouterDesiredInput,
  RouterSettings,
  type RouterSettingsInput,
  ServerSpec,
  type ServerSpecInput,
} from "./schema.js";
import {
  type CounterCarry,
  type CounterSnapshot,
  carryOver,
  counterCarrySchema,
  type EdgeTotals,
  emptyCarry,
  type ServerStats,
  toServerStats,
  toSnapshot,
  withCarry,
} from "./stats.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ApplyResult {
  /** Runtime API commands sent (empty when HAProxy was (re)started from the new config instead). */
  commands: string[];
  started: boolean;
  /** Servers that could not be deleted yet (still had connections); gone at the next reload. */
  pendingRemoval: string[];
}

export interface RunningInfo {
  pid: number;
  configPath: string | undefined;
}

/**
 * The traffic layer: one HAProxy in front of the model containers. The desired state (servers with
 * weights in percent) is persisted next to the rendered config, and every change is applied both to
 * the file and through the runtime API, so a reload or restart reproduces what is live.
 */
export class Router {
  readonly settings: RouterSettings;
  readonly paths: RouterPaths;
  readonly api: RuntimeApi;

  constructor(settings: RouterSettingsInput) {
    this.settings = RouterSettings.parse(settings);
    this.paths = routerPaths(this.settings.stateDir);
    this.api = new RuntimeApi(this.paths.socket);
  }

  /** Router for a state dir set up by `modelship host init` (its router.json), with optional overrides. */
  static async open(stateDir: string, overrides: Partial<RouterSettingsInput> = {}): Promise<Router> {
    const saved = await readJson(routerPaths(stateDir).settings);
    const base = saved && typeof saved === "object" ? (saved as Record<string, unknown>) : {};
    const merged = { ...base, ...stripUndefined(overrides), stateDir };
    const parsed = RouterSettings.safeParse(merged);
    if (!parsed.success) {
      throw new UserError(
        `invalid router settings in ${routerPaths(stateDir).settings}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
        { exitCode: ExitCode.usage, hint: "fix or delete it and run `modelship host init`" },
      );
    }
    return new Router(parsed.data);
  }

  async saveSettings(): Promise<void> {
    await atomicWriteJson(this.paths.settings, this.settings);
  }

  edgeUrl(): string {
    return `http://${connectHost(this.settings.edge.bind)}:${this.settings.edge.port}`;
  }

  metricsUrl(): string {
    return `http://${connectHost(this.settings.metrics.bind)}:${this.settings.metrics.port}/metrics`;
  }

  /** The last desired state written (empty when none yet). */
  async readDesired(): Promise<RouterDesired> {
    const raw = await readJson(this.paths.desired);
    if (raw === undefined) return { servers: [] };
    const parsed = RouterDesired.safeParse(raw);
    if (!parsed.success) {
      throw new UserError(`corrupt router state ${this.paths.desired}: ${parsed.error.issues[0]?.message}`, {
        exitCode: ExitCode.environment,
        hint: "delete it and re-run the deploy or `modelship host repair`",
      });
    }
    return parsed.data;
  }

  /** Checks a config with `haproxy -c`; HAProxy's own complaint becomes the error message. */
  async validate(config: string): Promise<void> {
    const dir = join(tmpdir(), `modelship-haproxy-check-${process.pid}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    const file = join(dir, "haproxy.cfg");
    try {
      await atomicWriteFile(file, config);
      await run(this.settings.haproxyBin, ["-c", "-q", "-f", file]);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === "ENOENT") throw haproxyMissing(this.settings.haproxyBin);
      const alert = (e.stderr ?? "").split("\n").find((l) => l.includes("ALERT")) ?? e.stderr ?? e.message;
      throw new UserError(`HAProxy rejects the generated config: ${alert.trim()}`, {
        exitCode: ExitCode.usage,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Renders and atomically writes haproxy.cfg for `desired` (validated first). */
  async writeConfig(desired: RouterDesired): Promise<string> {
    const config = renderConfig(this.settings, desired);
    await this.validate(config);
    await atomicWriteFile(this.paths.config, config);
    return config;
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

  /** Starts HAProxy with our config unless it is already running. */
  async ensureRunning(): Promise<{ started: boolean; pid: number }> {
    const live = await this.running();
    if (live && (await this.answers())) return { started: false, pid: live.pid };
    return this.withLock(async () => {
      const again = await this.running();
      if (again && (await this.answers())) return { started: false, pid: again.pid };
      await this.writeConfig(await this.readDesired());
      const pid = await this.start();
      return { started: true, pid };
    });
  }

  /** Cold start from the config file (the config is the truth: stale server state is dropped). */
  private async start(): Promise<number> {
    await mkdir(join(this.settings.stateDir, "haproxy"), { recursive: true, mode: 0o750 });
    await atomicWriteFile(this.paths.serverState, "1\n");
    // A cold start counts from 0 like any fresh HAProxy; interval diffs treat it as a reset.
    await rm(this.paths.counterCarry, { force: true });
    if (this.settings.supervisor === "systemd") {
      await systemctl("start", this.settings.systemdUnit);
    } else {
      await rm(this.paths.socket, { force: true });
      await this.launch(["-f", this.paths.config, "-D"]);
    }
    return this.waitAnswering();
  }

  /**
   * Seamless reload: the new process takes the listening sockets from the old one over the admin
   * socket (-x, needs `expose-fd listeners`), then tells it to finish its connections and exit
   * (-sf). Live server state (weights, admin states, health) is handed over via server-state-file.
   */
  async reload(): Promise<{ pid: number; previousPid: number | undefined }> {
    return this.withLock(() => this.reloadLocked());
  }

  private async reloadLocked(): Promise<{ pid: number; previousPid: number | undefined }> {
    const old = await this.running();
    await this.writeConfig(await this.readDesired());
    if (!old) return { pid: await this.start(), previousPid: undefined };
    await this.dumpServerState();
    // Snapshot the outgoing process's counters; persisted once the new process answers.
    const outgoing = await Promise.all([this.liveCounters(), this.liveEdgeTotals()]).catch(() => undefined);
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
      if (now && (replaced || reloadedInPlace)) {
        if (outgoing) {
          const carry = carryOver(await this.readCarry(), outgoing[0], outgoing[1]);
          await atomicWriteJson(this.paths.counterCarry, carry);
        }
        return { pid: now.pid, previousPid: old.pid };
      }
      if (Date.now() > deadline) {
        throw new UserError("HAProxy did not come back after reload within 10s", {
          exitCode: ExitCode.environment,
          hint: "run `modelship host check`",
        });
      }
      await sleep(50);
    }
  }

  /** Stops our HAProxy (tests, `host` maintenance); in-flight requests are finished (soft stop). */
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

  /**
   * Makes `desired` true: writes desired JSON + config atomically, then changes the live process
   * through the runtime API (add/del servers, addresses, weights, states) — no reload, no dropped
   * connection. Starts HAProxy if it is not running.
   */
  async apply(input: RouterDesiredInput): Promise<ApplyResult> {
    return this.update(() => input);
  }

  /**
   * Read-modify-write of the desired state under the router lock, so two processes changing
   * different servers at once do not lose each other's change.
   */
  private async update(change: (current: RouterDesired) => RouterDesiredInput): Promise<ApplyResult> {
    return this.withLock(async () => {
      const parsed = RouterDesired.safeParse(change(await this.readDesired()));
      if (!parsed.success) {
        throw new UserError(`invalid router state: ${parsed.error.issues.map((i) => i.message).join("; ")}`, {
          exitCode: ExitCode.usage,
        });
      }
      const desired = parsed.data;
      await this.writeConfig(desired);
      await atomicWriteJson(this.paths.desired, desired);
      if (!(await this.running()) || !(await this.answers())) {
        await this.start();
        return { commands: [], started: true, pendingRemoval: [] };
      }
      return { ...(await this.pushRuntime(desired)), started: false };
    });
  }

  private async pushRuntime(desired: RouterDesired): Promise<Omit<ApplyResult, "started">> {
    const commands: string[] = [];
    const pendingRemoval: string[] = [];
    const exec = async (cmd: string, ok?: RegExp) => {
      commands.push(cmd);
      return this.api.exec(cmd, ok);
    };
    const live = new Map((await this.api.showServersState(BACKEND)).map((s) => [s.name, s]));
    const liveBackup = new Map((await this.api.showStat(BACKEND)).map((r) => [r.svname, r.bck === "1"]));
    let reload = false;
    // Servers gaining traffic first, losing traffic last: a flip never passes through a moment where
    // no server takes requests.
    const effectiveWeight = (name: string) => {
      const cur = live.get(name);
      return cur && adminStateOf(cur.adminState) === "ready" ? cur.userWeight : 0;
    };
    const gain = (spec: RouterDesired["servers"][number]) =>
      (spec.state === "ready" ? percentToWeight(spec.weight) : 0) - effectiveWeight(spec.name);
    for (const spec of [...desired.servers].sort((a, b) => gain(b) - gain(a))) {
      const ref = `${BACKEND}/${spec.name}`;
      const cur = live.get(spec.name);
      // The runtime API cannot flip `backup` on a server: the (seamless) reload below applies it.
      if (cur && liveBackup.get(spec.name) !== spec.backup) reload = true;
      if (!cur) {
        // HAProxy 2.6: dynamic servers start in maintenance, ignore default-server, and need their
        // health check enabled explicitly.
        await exec(
          `add server ${ref} ${serverKeywords(this.settings, spec, false)}`,
          /New server registered/,
        );
        await exec(`enable health ${ref}`);
      } else if (cur.address !== spec.address || cur.port !== spec.port) {
        await exec(`set server ${ref} addr ${spec.address} port ${spec.port}`, /changed|no need/i);
      }
      const weight = spec.state === "ready" ? percentToWeight(spec.weight) : 0;
      if (!cur || cur.userWeight !== weight) await exec(`set server ${ref} weight ${weight}`);
      if (!cur || adminStateOf(cur.adminState) !== spec.state)
        await exec(`set server ${ref} state ${spec.state}`);
    }
    const wanted = new Set(desired.servers.map((s) => s.name));
    const leaving = [...live.keys()].filter((name) => !wanted.has(name));
    // Maintenance stops new requests but lets in-flight ones finish; HAProxy 2.6 refuses to delete a
    // server that still has sessions or idle connections, so retry until it lets go (bounded). Never
    // `shutdown sessions`: that would fail requests users are waiting on.
    for (const name of leaving) await exec(`set server ${BACKEND}/${name} state maint`);
    const deadline = Date.now() + this.settings.timeouts.removeGraceMs;
    let pending = leaving;
    while (pending.length > 0) {
      const still: string[] = [];
      for (const name of pending) {
        const cmd = `del server ${BACKEND}/${name}`;
        const answer = await this.api.send(cmd);
        if (/Server deleted/.test(answer)) commands.push(cmd);
        else if (/still has connections/i.test(answer)) still.push(name);
        else
          throw new UserError(`HAProxy refused '${cmd}': ${answer.trim()}`, {
            exitCode: ExitCode.environment,
          });
      }
      pending = still;
      if (pending.length === 0 || Date.now() > deadline) break;
      await sleep(100);
    }
    pendingRemoval.push(...pending);
    if (reload) {
      const r = await this.reloadLocked();
      commands.push(`reload (backup flag changed; pid ${r.previousPid} → ${r.pid})`);
    }
    return { commands, pendingRemoval };
  }

  /** Adds a server or replaces its spec (address, weight, state). */
  async upsertServer(spec: ServerSpecInput): Promise<ApplyResult> {
    const parsed = parseSpec(spec);
    return this.update((desired) => ({
      servers: [...desired.servers.filter((s) => s.name !== parsed.name), parsed],
    }));
  }

  /** Sets traffic shares in percent; a server given a share > 0 is made ready. Others keep theirs. */
  async setWeights(weights: Record<string, number>): Promise<ApplyResult> {
    return this.update((desired) => {
      for (const name of Object.keys(weights)) {
        if (!desired.servers.some((s) => s.name === name)) throw unknownServer(name, desired);
      }
      return {
        servers: desired.servers.map((s) => {
          const w = weights[s.name];
          if (w === undefined) return s;
          return { ...s, weight: w, state: w > 0 ? "ready" : s.state };
        }),
      };
    });
  }

  /** No new requests to `name`; in-flight ones finish. */
  async drain(name: string): Promise<ApplyResult> {
    return this.setState(name, "drain");
  }

  async setState(name: string, state: ServerSpec["state"]): Promise<ApplyResult> {
    return this.update((desired) => {
      if (!desired.servers.some((s) => s.name === name)) throw unknownServer(name, desired);
      return { servers: desired.servers.map((s) => (s.name === name ? { ...s, state } : s)) };
    });
  }

  /** Waits until `name` has no current sessions (or it is gone). */
  async waitDrained(
    name: string,
    timeoutMs: number,
  ): Promise<{ drained: boolean; sessions: number; waitedMs: number }> {
    const started = Date.now();
    for (;;) {
      const s = (await this.stats()).find((x) => x.name === name);
      const sessions = s?.currentSessions ?? 0;
      if (sessions === 0) return { drained: true, sessions, waitedMs: Date.now() - started };
      if (Date.now() - started >= timeoutMs)
        return { drained: false, sessions, waitedMs: Date.now() - started };
      await sleep(50);
    }
  }

  /** Waits until HAProxy's health check says `name` is UP (check passed), or the timeout. */
  async waitHealthy(
    name: string,
    timeoutMs: number,
  ): Promise<{ healthy: boolean; status: string; waitedMs: number }> {
    const started = Date.now();
    for (;;) {
      const s = (await this.stats()).find((x) => x.name === name);
      const status = s ? `${s.status} ${s.checkStatus}`.trim() : "absent";
      if (s?.status.startsWith("UP") && s.checkStatus.startsWith("L7OK"))
        return { healthy: true, status, waitedMs: Date.now() - started };
      if (Date.now() - started >= timeoutMs)
        return { healthy: false, status, waitedMs: Date.now() - started };
      await sleep(100);
    }
  }

  /** Takes `name` out of HAProxy (live and in the config). Drain and wait first for a clean exit. */
  async remove(name: string): Promise<ApplyResult> {
    return this.update((desired) => ({ servers: desired.servers.filter((s) => s.name !== name) }));
  }

  async stats(): Promise<ServerStats[]> {
    return toServerStats(await this.api.showStat(BACKEND));
  }

  /**
   * Counters per server now, monotonic across seamless reloads; `diffCounters(before, after)` gives
   * an interval's requests and codes.
   */
  async counters(): Promise<CounterSnapshot> {
    return withCarry(await this.liveCounters(), await this.readCarry());
  }

  /** The edge frontend's totals (what clients were answered; 5xx among them), across reloads. */
  async edgeTotals(): Promise<EdgeTotals> {
    const [live, carry] = await Promise.all([this.liveEdgeTotals(), this.readCarry()]);
    return { requests: live.requests + carry.edge.requests, failed: live.failed + carry.edge.failed };
  }

  private async liveCounters(): Promise<CounterSnapshot> {
    return toSnapshot(await this.stats());
  }

  private async liveEdgeTotals(): Promise<EdgeTotals> {
    const rows = await this.api.showStatAll();
    const fe = rows.find((r) => r.pxname === "edge" && r.svname === "FRONTEND");
    const n = (v: string | undefined) => (v && Number.isFinite(Number(v)) ? Number(v) : 0);
    return { requests: n(fe?.req_tot), failed: n(fe?.hrsp_5xx) };
  }

  private async readCarry(): Promise<CounterCarry> {
    const text = await readFile(this.paths.counterCarry, "utf8").catch(() => undefined);
    if (text === undefined) return emptyCarry();
    try {
      return counterCarrySchema.parse(JSON.parse(text));
    } catch {
      return emptyCarry(); // a damaged carry only costs pre-reload history, never a deploy
    }
  }

  /** True when the admin socket answers. */
  async answers(): Promise<boolean> {
    try {
      return (await this.api.send("show info")).includes("Name: HAProxy");
    } catch {
      return false;
    }
  }

  private async dumpServerState(): Promise<void> {
    const state = await this.api.send(`show servers state`);
    if (state.startsWith("1\n")) await atomicWriteFile(this.paths.serverState, state);
  }

  private async launch(args: string[]): Promise<void> {
    // GitHub's runner kills every process carrying its RUNNER_TRACKING_ID when the job ends; HAProxy
    // must outlive the job, so it does not inherit it (-D also detaches it from our session).
    const env = { ...process.env };
    delete env.RUNNER_TRACKING_ID;
    try {
      await run(this.settings.haproxyBin, args, { env, timeout: 15_000 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === "ENOENT") throw haproxyMissing(this.settings.haproxyBin);
      const alert = (e.stderr ?? "")
        .split("\n")
        .filter((l) => l.includes("ALERT"))
        .join(" ");
      throw new UserError(`HAProxy failed to start: ${(alert || e.stderr || e.message).trim()}`, {
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

  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(join(this.settings.stateDir, "haproxy"), { recursive: true, mode: 0o750 });
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.paths.lock, {
        realpath: false,
        stale: 15_000,
        retries: { retries: 100, minTimeout: 20, maxTimeout: 200 },
      });
    } catch (err) {
      throw new UserError(
        `the router state is locked by another modelship process (${this.paths.lock}.lock)`,
        {
          exitCode: ExitCode.busy,
          cause: err,
        },
      );
    }
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

/** admin state bits → our state names (0x01/0x02/0x04/0x20 maint flavours, 0x08/0x10 drain). */
function adminStateOf(bits: number): ServerSpec["state"] {
  if (bits & 0x27) return "maint";
  if (bits & 0x18) return "drain";
  return "ready";
}

function parseSpec(spec: ServerSpecInput): ServerSpec {
  const parsed = ServerSpec.safeParse(spec);
  if (!parsed.success) {
    throw new UserError(
      `invalid server: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      {
        exitCode: ExitCode.usage,
      },
    );
  }
  return parsed.data;
}

function unknownServer(name: string, desired: RouterDesired): UserError {
  const known = desired.servers.map((s) => s.name).join(", ") || "none";
  return new UserError(`no server '${name}' behind the router (known: ${known})`, {
    exitCode: ExitCode.usage,
  });
}

function haproxyMissing(bin: string): UserError {
  return new UserError(`HAProxy not found at ${bin}`, {
    exitCode: ExitCode.environment,
    hint: "install it: `sudo apt-get install haproxy` (2.6+)",
  });
}

async function systemctl(verb: string, unit: string): Promise<void> {
  try {
    await run("systemctl", [verb, unit], { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new UserError(`systemctl ${verb} ${unit} failed: ${(e.stderr || e.message).trim()}`, {
      exitCode: ExitCode.environment,
      hint: `see \`journalctl -u ${unit}\``,
    });
  }
}

function connectHost(bind: string): string {
  if (bind === "" || bind === "*" || bind === "0.0.0.0" || bind === "::" || bind === "[::]")
    return "127.0.0.1";
  return bind.includes(":") && !bind.startsWith("[") ? `[${bind}]` : bind;
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${path} is not valid JSON`, { exitCode: ExitCode.environment });
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
