import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile } from "../util/fs.js";
import { pinEntries, type RouterPaths, renderConfig, renderPinMap } from "./config.js";
import {
  type LiveServer,
  type PinMapEntry,
  type PlannedCommand,
  parseShowMapEntries,
  planChanges,
  planPinMap,
} from "./planner.js";
import { effectiveRunAs, HaproxyProcess, type RunningInfo } from "./process.js";
import type { RuntimeApi } from "./runtime-api.js";
import {
  BACKEND,
  RouterDesired,
  type RouterDesiredInput,
  RouterSettings,
  type RouterSettingsInput,
  ServerSpec,
  type ServerSpecInput,
  type ShadowTargetInput,
} from "./schema.js";
import { SHADOW_LUA } from "./shadow-lua.js";
import {
  type CounterSnapshot,
  carryOver,
  type EdgeTotals,
  type ServerStats,
  toServerStats,
  toSnapshot,
  withCarry,
} from "./stats.js";
import { issues, loadRouterSettings, RouterStore } from "./store.js";

export type { RunningInfo } from "./process.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ApplyResult {
  /** Runtime API commands sent (empty when HAProxy was (re)started from the new config instead). */
  commands: string[];
  started: boolean;
  /** Servers that could not be deleted yet (still had connections); gone at the next reload. */
  pendingRemoval: string[];
}

/**
 * The traffic layer: one HAProxy in front of the model containers. Three parts, one file each:
 * the desired-state store (store.ts: router.json, router-desired.json, lock), process supervision
 * (process.ts: check, start, reload, stop) and a pure planner (planner.ts: live + desired → runtime
 * API commands). This class wires them: every change is written to the desired state and the config,
 * then applied live through the runtime API, so a reload or restart reproduces what is live.
 */
export class Router {
  readonly settings: RouterSettings;
  readonly paths: RouterPaths;
  readonly api: RuntimeApi;
  readonly store: RouterStore;
  readonly process: HaproxyProcess;

  constructor(settings: RouterSettingsInput) {
    const parsed = RouterSettings.safeParse(settings);
    if (!parsed.success)
      throw new UserError(`invalid router settings: ${issues(parsed.error)}`, { exitCode: ExitCode.usage });
    this.settings = parsed.data;
    this.store = new RouterStore(this.settings);
    this.paths = this.store.paths;
    this.process = new HaproxyProcess(this.settings, this.paths);
    this.api = this.process.api;
  }

  /**
   * Router for a state dir set up by `modelship host init` (its router.json), with optional overrides.
   * Refuses a state dir another user could have prepared, and a router.json that fails the schema.
   */
  static async open(stateDir: string, overrides: Partial<RouterSettingsInput> = {}): Promise<Router> {
    return new Router(await loadRouterSettings(stateDir, overrides));
  }

  async saveSettings(): Promise<void> {
    await this.store.saveSettings();
  }

  edgeUrl(): string {
    return `http://${connectHost(this.settings.edge.bind)}:${this.settings.edge.port}`;
  }

  metricsUrl(): string {
    return `http://${connectHost(this.settings.metrics.bind)}:${this.settings.metrics.port}/metrics`;
  }

  /** The last desired state written (empty when none yet). */
  async readDesired(): Promise<RouterDesired> {
    return this.store.readDesired();
  }

  /** Checks a config with `haproxy -c` (in a private temp dir); HAProxy's complaint becomes the error. */
  async validate(config: string): Promise<void> {
    await this.process.validate(config);
  }

  /** The config for `desired` as it would be written (with the user HAProxy drops to resolved). */
  async render(desired: RouterDesired): Promise<string> {
    const runAs = await effectiveRunAs(this.settings);
    return renderConfig({ ...this.settings, ...(runAs ? { runAs } : { runAs: undefined }) }, desired);
  }

  /** Renders and atomically writes haproxy.cfg for `desired` (validated first). */
  async writeConfig(desired: RouterDesired): Promise<string> {
    const config = await this.render(desired);
    // haproxy -c loads the Lua too: it must be in place first (static content, same every time).
    if (desired.shadow) await atomicWriteFile(this.paths.shadowLua, SHADOW_LUA);
    // Likewise the pin map (read at start and reload; live changes go through the runtime API).
    if (this.settings.pin.enabled) await atomicWriteFile(this.paths.pinMap, renderPinMap(desired));
    await this.validate(config);
    await atomicWriteFile(this.paths.config, config);
    return config;
  }

  /** PID of our HAProxy if it is alive (pidfile + /proc), with the config it was started with. */
  async running(): Promise<RunningInfo | undefined> {
    return this.process.running();
  }

  /** True when the admin socket answers. */
  async answers(): Promise<boolean> {
    return this.process.answers();
  }

  /** Starts HAProxy with our config unless it is already running. */
  async ensureRunning(): Promise<{ started: boolean; pid: number }> {
    const live = await this.running();
    if (live && (await this.answers())) return { started: false, pid: live.pid };
    return this.store.withLock(async () => {
      const again = await this.running();
      if (again && (await this.answers())) return { started: false, pid: again.pid };
      await this.writeConfig(await this.readDesired());
      const pid = await this.start();
      return { started: true, pid };
    });
  }

  /** Cold start: a fresh HAProxy counts from 0, so the carry of replaced processes is dropped. */
  private async start(): Promise<number> {
    await this.store.clearCarry();
    return this.process.start();
  }

  /**
   * Seamless reload: the new process takes the listening sockets from the old one (-x) and lets it
   * finish its connections (-sf). Live server state (weights, admin states, health) is handed over via
   * server-state-file; counters of the outgoing process are carried over.
   */
  async reload(): Promise<{ pid: number; previousPid: number | undefined }> {
    return this.store.withLock(() => this.reloadLocked());
  }

  private async reloadLocked(): Promise<{ pid: number; previousPid: number | undefined }> {
    const old = await this.running();
    await this.writeConfig(await this.readDesired());
    if (!old) return { pid: await this.start(), previousPid: undefined };
    await this.dumpServerState();
    // Snapshot the outgoing process's counters; persisted once the new process answers.
    const outgoing = await Promise.all([this.liveCounters(), this.liveEdgeTotals()]).catch(() => undefined);
    const pid = await this.process.reload(old);
    if (outgoing)
      await this.store.writeCarry(carryOver(await this.store.readCarry(), outgoing[0], outgoing[1]));
    return { pid, previousPid: old.pid };
  }

  /** Stops our HAProxy (tests, `host` maintenance); in-flight requests are finished (soft stop). */
  async stop(): Promise<void> {
    await this.process.stop();
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
    return this.store.withLock(async () => {
      const current = await this.readDesired();
      const next = change(current);
      // A running shadow mirror survives server changes unless the change names `shadow` itself.
      const keep = !("shadow" in next) && current.shadow ? { shadow: current.shadow } : {};
      const parsed = RouterDesired.safeParse({ ...next, ...keep });
      if (!parsed.success) {
        throw new UserError(`invalid router state: ${parsed.error.issues.map((i) => i.message).join("; ")}`, {
          exitCode: ExitCode.usage,
        });
      }
      const desired = parsed.data;
      await this.writeConfig(desired);
      await this.store.writeDesired(desired);
      if (!(await this.running()) || !(await this.answers())) {
        await this.start();
        return { commands: [], started: true, pendingRemoval: [] };
      }
      return { ...(await this.pushRuntime(desired)), started: false };
    });
  }

  /**
   * Starts (a target) or stops (null) the shadow mirror. Lua is loaded at start-up, so this is a
   * config change applied by a seamless reload (listening sockets handed over, no connection refused).
   */
  async setShadow(target: ShadowTargetInput | null): Promise<void> {
    await this.store.withLock(async () => {
      const current = await this.readDesired();
      const parsed = RouterDesired.safeParse({
        servers: current.servers,
        ...(target ? { shadow: target } : {}),
      });
      if (!parsed.success) {
        throw new UserError(
          `invalid shadow target: ${parsed.error.issues.map((i) => i.message).join("; ")}`,
          {
            exitCode: ExitCode.usage,
          },
        );
      }
      await this.writeConfig(parsed.data);
      await this.store.writeDesired(parsed.data);
      await this.reloadLocked();
    });
  }

  /** URL of the shadow mirror's pairs (NDJSON), served on the metrics listener while a mirror runs. */
  shadowPairsUrl(since = 0): string {
    return `http://${connectHost(this.settings.metrics.bind)}:${this.settings.metrics.port}/shadow/pairs?since=${since}`;
  }

  /** What the live process has now, in the planner's terms. */
  async liveServers(): Promise<LiveServer[]> {
    const [state, stat] = await Promise.all([this.api.showServersState(BACKEND), this.api.showStat(BACKEND)]);
    const backup = new Map(stat.map((r) => [r.svname, r.bck === "1"]));
    return state.map((s) => ({
      name: s.name,
      address: s.address,
      port: s.port,
      adminState: s.adminState,
      userWeight: s.userWeight,
      backup: backup.get(s.name) ?? false,
    }));
  }

  /** Executes the planner's commands; deletes leaving servers once HAProxy lets go of them. */
  private async pushRuntime(desired: RouterDesired): Promise<Omit<ApplyResult, "started">> {
    const plan = planChanges(this.settings, await this.liveServers(), desired);
    const pin = await this.planPin(desired);
    if (pin === "reload") plan.reload = true;
    const commands: string[] = [];
    const run = async (steps: PlannedCommand[]) => {
      for (const step of steps) {
        commands.push(step.command);
        await this.api.exec(step.command, step.ok);
      }
    };
    if (pin !== "reload") await run(pin.before);
    await run(plan.commands);
    if (pin !== "reload") await run(pin.after);
    // HAProxy 2.6 refuses to delete a server that still has sessions or idle connections, so retry
    // until it lets go (bounded). Never `shutdown sessions`: that would fail requests users wait on.
    const deadline = Date.now() + this.settings.timeouts.removeGraceMs;
    let pending = plan.leaving;
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
    if (plan.reload) {
      const r = await this.reloadLocked();
      const why = pin === "reload" ? "pin map not loaded" : "backup flag changed";
      commands.push(`reload (${why}; pid ${r.previousPid} → ${r.pid})`);
    }
    return { commands, pendingRemoval: pending };
  }

  /**
   * The pin map changes that follow `desired` live (no reload), or "reload" when the running process
   * has no pin map (started before pinning was enabled): a seamless reload loads it from the file.
   */
  private async planPin(
    desired: RouterDesired,
  ): Promise<{ before: PlannedCommand[]; after: PlannedCommand[] } | "reload"> {
    if (!this.settings.pin.enabled) return { before: [], after: [] };
    const live = await this.livePinMap();
    if (!live) return "reload";
    return planPinMap(this.paths.pinMap, live, pinEntries(desired));
  }

  /** The pin map's entries in the running process (`show map`), undefined when it has none loaded. */
  async livePinMap(): Promise<PinMapEntry[] | undefined> {
    const answer = await this.api.send(`show map ${this.paths.pinMap}`);
    if (/Unknown map/i.test(answer)) return undefined;
    return parseShowMapEntries(answer);
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
    return withCarry(await this.liveCounters(), await this.store.readCarry());
  }

  /** The edge frontend's totals (what clients were answered; 5xx among them), across reloads. */
  async edgeTotals(): Promise<EdgeTotals> {
    const [live, carry] = await Promise.all([this.liveEdgeTotals(), this.store.readCarry()]);
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

  private async dumpServerState(): Promise<void> {
    const state = await this.api.send(`show servers state`);
    if (state.startsWith("1\n")) await atomicWriteFile(this.paths.serverState, state);
  }
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

function connectHost(bind: string): string {
  if (bind === "" || bind === "*" || bind === "0.0.0.0" || bind === "::" || bind === "[::]")
    return "127.0.0.1";
  return bind.includes(":") && !bind.startsWith("[") ? `[${bind}]` : bind;
}
