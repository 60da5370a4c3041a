import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffCounters, percentToWeight, Router, RouterDesired, renderConfig } from "../src/router/index.js";
import { isUserError } from "../src/util/errors.js";
import { killDaemonsOf } from "./support/leftovers.js";

/** What a backend does with /predict (and /ready, for the failure modes that take the process down). */
type Mode = "ok" | "500" | "503" | "reset" | "slow";

/** A real HTTP server standing in for a model container: answers with its name so we see the split. */
class Backend {
  mode: Mode = "ok";
  served = 0;
  private server: http.Server;
  private sockets = new Set<Socket>();
  private constructor(
    readonly name: string,
    public port: number,
  ) {
    this.server = this.create();
  }

  static async start(name: string, port = 0): Promise<Backend> {
    const b = new Backend(name, port);
    await b.listen();
    return b;
  }

  private create(): http.Server {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (this.mode === "reset") {
          req.socket.destroy();
          return;
        }
        if (req.url === "/ready") {
          res.statusCode = this.mode === "503" ? 503 : 200;
          res.end("ready");
          return;
        }
        if (this.mode === "500" || this.mode === "503") {
          res.statusCode = Number(this.mode);
          res.end("failing");
          return;
        }
        const answer = () => {
          this.served++;
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ backend: this.name }));
        };
        if (this.mode === "slow" && req.url !== "/ready") setTimeout(answer, 800);
        else answer();
      });
    });
    server.keepAliveTimeout = 60_000;
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    return server;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, "127.0.0.1", () => {
        this.port = (this.server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  /** The process "dies": listening socket closed (connection refused) and open connections cut. */
  async kill(): Promise<void> {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Comes back on the same port. */
  async revive(): Promise<void> {
    this.server = this.create();
    await this.listen();
  }
}

interface LoadResult {
  ok: number;
  non2xx: number;
  errors: number;
  byBackend: Record<string, number>;
  problems: string[];
}

/** Keep-alive load: `concurrency` clients each sending POST /predict back to back until stopped. */
class Load {
  readonly result: LoadResult = { ok: 0, non2xx: 0, errors: 0, byBackend: {}, problems: [] };
  private running = false;
  private workers: Promise<void>[] = [];
  private readonly agent: http.Agent;

  constructor(
    private readonly url: string,
    private readonly concurrency = 16,
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  }

  private sent = 0;

  start(): this {
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.worker());
    return this;
  }

  async stop(): Promise<LoadResult> {
    this.running = false;
    await Promise.all(this.workers);
    this.agent.destroy();
    return this.result;
  }

  /** Runs until `limit` requests have been answered. */
  async run(): Promise<LoadResult> {
    this.start();
    await Promise.all(this.workers);
    this.agent.destroy();
    return this.result;
  }

  private async worker(): Promise<void> {
    while (this.running && this.sent < this.limit) {
      this.sent++;
      await this.once();
    }
  }

  private once(): Promise<void> {
    const body = JSON.stringify({ text: "the flight was great" });
    return new Promise((resolve) => {
      const req = http.request(
        `${this.url}/predict`,
        {
          method: "POST",
          agent: this.agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c) => {
            text += c;
          });
          res.on("end", () => {
            if (res.statusCode === 200) {
              this.result.ok++;
              const name = (JSON.parse(text) as { backend: string }).backend;
              this.result.byBackend[name] = (this.result.byBackend[name] ?? 0) + 1;
            } else {
              this.result.non2xx++;
              this.note(`HTTP ${res.statusCode}`);
            }
            resolve();
          });
        },
      );
      req.on("error", (err: NodeJS.ErrnoException) => {
        this.result.errors++;
        this.note(err.code ?? err.message);
        resolve();
      });
      req.end(body);
    });
  }

  private note(problem: string) {
    if (this.result.problems.length < 20) this.result.problems.push(problem);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("router (real HAProxy 2.6, real backends)", () => {
  let stateDir: string;
  let router: Router;
  let a: Backend;
  let b: Backend;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "mstest-router-"));
    router = new Router({
      stateDir,
      edge: { bind: "127.0.0.1", port: await freePort() },
      metrics: { bind: "127.0.0.1", port: await freePort() },
      health: { interMs: 300, fastInterMs: 100, downInterMs: 300, fall: 2, rise: 2 },
      timeouts: { hardStopAfterMs: 5_000 },
    });
    a = await Backend.start("a");
    b = await Backend.start("b");
  });

  afterAll(async () => {
    const live = await router?.running();
    if (live) process.kill(live.pid, "SIGKILL");
    if (stateDir) await killDaemonsOf(stateDir);
    await a?.kill();
    await b?.kill();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("renders a config that `haproxy -c` accepts, with health checks, retries and the exporter", async () => {
    const desired = RouterDesired.parse({
      servers: [
        { name: "v1", port: 9001, weight: 95 },
        { name: "v2", port: 9002, weight: 5, state: "drain" },
        { name: "v3", port: 9003, weight: 0, state: "maint" },
      ],
    });
    const config = renderConfig(router.settings, desired);
    await router.validate(config);
    expect(config).toContain(`stats socket ${router.paths.socket} mode 660 level admin expose-fd listeners`);
    expect(config).toMatch(/retry-on conn-failure empty-response response-timeout 500 502 503 504/);
    expect(config).toContain("option redispatch 1");
    expect(config).toContain("option httpchk GET /ready");
    expect(config).toContain("http-request use-service prometheus-exporter if { path /metrics }");
    expect(config).toMatch(/server v1 127\.0\.0\.1:9001 weight 243 check inter 300ms/);
    expect(config).toMatch(/server v1 .* observe layer4 error-limit 1 on-error mark-down$/m);
    expect(config).toMatch(/server v2 127\.0\.0\.1:9002 weight 0 check/);
    expect(config).toMatch(/server v3 .* disabled$/m);
    const withGroup = renderConfig(new Router({ ...router.settings, socketGroup: "0" }).settings, desired);
    expect(withGroup).toContain("mode 660 gid 0 level admin");
    await router.validate(withGroup);
  });

  it("refuses bad input with a clear UserError", async () => {
    const bad = await router.apply({ servers: [{ name: "bad name", port: 1, weight: 10 }] }).catch((e) => e);
    expect(isUserError(bad)).toBe(true);
    expect(bad.exitCode).toBe(2);
    const over = await router.apply({ servers: [{ name: "x", port: 1, weight: 101 }] }).catch((e) => e);
    expect(over.message).toMatch(/<=100/);
    const unknown = await router.setWeights({ nope: 10 }).catch((e) => e);
    expect(unknown.message).toMatch(/no server 'nope'/);
  });

  it("starts HAProxy detached and attaches servers live", async () => {
    const started = await router.ensureRunning();
    expect(started.started).toBe(true);
    expect((await router.ensureRunning()).started).toBe(false);
    const applied = await router.apply({
      servers: [
        { name: "a", port: a.port, weight: 100 },
        { name: "b", port: b.port, weight: 0 },
      ],
    });
    expect(applied.started).toBe(false);
    expect(applied.commands).toContain(
      `add server models/b 127.0.0.1:${b.port} weight 0 check inter 300ms fastinter 100ms downinter 300ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down`,
    );
    expect((await router.waitHealthy("a", 5_000)).healthy).toBe(true);
    expect((await router.waitHealthy("b", 5_000)).healthy).toBe(true);
  });

  it("surfaces HAProxy's refusal with the command and its answer", async () => {
    const err = await router.api.exec("set server models/ghost weight 1").catch((e) => e);
    expect(isUserError(err)).toBe(true);
    expect(err.message).toBe("HAProxy refused 'set server models/ghost weight 1': No such server.");
  });

  it("splits traffic by weight (5/25/50/100%) and its counters match what was sent", async () => {
    const measured: string[] = [];
    for (const canary of [5, 25, 50, 100]) {
      await router.setWeights({ a: 100 - canary, b: canary });
      const before = await router.counters();
      const result = await new Load(router.edgeUrl(), 8, 2000).run();
      const after = await router.counters();
      expect(result.errors + result.non2xx).toBe(0);
      const share = ((result.byBackend.b ?? 0) / 2000) * 100;
      measured.push(`${canary}%→${share.toFixed(2)}%`);
      expect(Math.abs(share - canary)).toBeLessThanOrEqual(1.5);
      // stats parsing: HAProxy's per-server counters agree with what the clients saw
      const delta = diffCounters(before, after);
      expect((delta.servers.a?.responses["2xx"] ?? 0) + (delta.servers.b?.responses["2xx"] ?? 0)).toBe(2000);
      expect(delta.servers.b?.responses["2xx"] ?? 0).toBe(result.byBackend.b ?? 0);
      expect(delta.servers.a?.requests ?? 0).toBe(result.byBackend.a ?? 0);
      expect(delta.servers.b?.errorRate).toBe(0);
      expect(delta.servers.b?.attempts).toBe(result.byBackend.b ?? 0);
    }
    console.log(`weight split over 2000 requests each: ${measured.join(", ")}`);
    const stats = await router.stats();
    const sb = stats.find((s) => s.name === "b");
    expect(sb?.weight).toBe(256);
    expect(sb?.sharePercent).toBe(100);
    expect(sb?.checkStatus).toBe("L7OK");
    expect(stats.find((s) => s.name === "a")?.weight).toBe(0);
  });

  it("a weight flip raises the gaining server before lowering the losing one", async () => {
    await router.setWeights({ a: 100, b: 0 });
    const flip = await router.setWeights({ a: 0, b: 100 });
    const raise = flip.commands.indexOf("set server models/b weight 256");
    const lower = flip.commands.indexOf("set server models/a weight 0");
    expect(raise).toBeGreaterThanOrEqual(0);
    expect(lower).toBeGreaterThan(raise);
    const back = await router.setWeights({ a: 100, b: 0 });
    expect(back.commands.indexOf("set server models/b weight 0")).toBeGreaterThan(
      back.commands.indexOf("set server models/a weight 256"),
    );
  });

  it("drains a server under continuous keep-alive load with zero failed requests", async () => {
    await router.setWeights({ a: 50, b: 50 });
    const load = new Load(router.edgeUrl(), 16).start();
    await sleep(500);
    await router.drain("b");
    const drained = await router.waitDrained("b", 5_000);
    expect(drained.drained).toBe(true);
    const servedAtDrain = b.served;
    await sleep(300);
    expect(b.served).toBe(servedAtDrain); // nothing new reaches a drained server
    const removed = await router.remove("b");
    expect(removed.pendingRemoval).toEqual([]);
    expect(removed.commands).toContain("del server models/b");
    await sleep(300);
    const result = await load.stop();
    console.log(
      `drain under load: ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors, drained in ${drained.waitedMs}ms`,
    );
    expect(result.problems).toEqual([]);
    expect(result.ok).toBeGreaterThan(200);
    expect(await readFile(router.paths.config, "utf8")).not.toMatch(/server b /);
    expect((await router.stats()).map((s) => s.name)).toEqual(["a"]);
  });

  it("adds a server live (dynamic server, health-checked) and deletes it again", async () => {
    const added = await router.upsertServer({ name: "b", port: b.port, weight: 0 });
    expect(added.commands[0]).toMatch(/^add server models\/b /);
    expect(added.commands).toContain("enable health models/b");
    expect((await router.waitHealthy("b", 5_000)).healthy).toBe(true);
    expect(await readFile(router.paths.config, "utf8")).toMatch(/server b 127\.0\.0\.1:\d+ weight 0 check/);
    const removed = await router.remove("b");
    expect(removed.commands).toContain("del server models/b");
    expect((await router.stats()).map((s) => s.name)).toEqual(["a"]);
    await router.upsertServer({ name: "b", port: b.port, weight: 50 });
    await router.setWeights({ a: 50 });
    expect((await router.waitHealthy("b", 5_000)).healthy).toBe(true);
  });

  it("removing a server lets its in-flight requests finish before deleting it", async () => {
    const c = await Backend.start("c");
    c.mode = "slow";
    try {
      await router.upsertServer({ name: "c", port: c.port, weight: 0 });
      expect((await router.waitHealthy("c", 5_000)).healthy).toBe(true);
      await router.setWeights({ a: 0, b: 0, c: 100 });
      const inFlight = new Load(router.edgeUrl(), 4, 4).run();
      await sleep(300);
      const t0 = Date.now();
      const removed = await router.remove("c");
      const waited = Date.now() - t0;
      const result = await inFlight;
      expect(result.problems).toEqual([]);
      expect(result.byBackend.c).toBe(4);
      expect(removed.commands).toContain("del server models/c");
      expect(removed.pendingRemoval).toEqual([]);
      expect(waited).toBeGreaterThan(300); // it waited for the slow requests rather than cutting them
    } finally {
      await router.setWeights({ a: 50, b: 50 });
      await c.kill();
    }
    expect((await router.stats()).map((s) => s.name)).toEqual(["a", "b"]);
  });

  it("serialises concurrent changes from separate Router instances under the file lock (no lost update)", async () => {
    const routers = [1, 2, 3, 4].map(() => new Router(router.settings));
    await Promise.all(routers.map((r, i) => r.upsertServer({ name: `c${i}`, port: b.port, weight: 0 })));
    expect((await router.readDesired()).servers.map((s) => s.name).sort()).toEqual([
      "a",
      "b",
      "c0",
      "c1",
      "c2",
      "c3",
    ]);
    expect((await router.stats()).length).toBe(6);
    await Promise.all(routers.map((r, i) => r.remove(`c${i}`)));
    expect((await router.stats()).map((s) => s.name).sort()).toEqual(["a", "b"]);
  });

  for (const failure of ["503", "reset", "killed"] as const) {
    it(`masks a backend that starts failing (${failure}) while the health check takes it out`, async () => {
      const load = new Load(router.edgeUrl(), 16).start();
      await sleep(300);
      const t0 = Date.now();
      if (failure === "killed") await b.kill();
      else b.mode = failure;
      const down = await waitFor("b DOWN", async () => {
        const s = (await router.stats()).find((x) => x.name === "b");
        return s?.status.startsWith("DOWN") ? Date.now() - t0 : undefined;
      });
      await sleep(300);
      if (failure === "killed") await b.revive();
      else b.mode = "ok";
      expect((await router.waitHealthy("b", 10_000)).healthy).toBe(true);
      await sleep(300);
      const result = await load.stop();
      const sb = (await router.stats()).find((x) => x.name === "b");
      console.log(
        `failover (${failure}): ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors; DOWN after ${down}ms; b retries ${sb?.retries}, redispatches ${sb?.redispatches}`,
      );
      expect(result.problems).toEqual([]);
      expect(result.byBackend.a ?? 0).toBeGreaterThan(0);
    });
  }

  it("a backup server (warm standby) serves while the only regular server is dead", async () => {
    const flipped = await router.upsertServer({ name: "b", port: b.port, weight: 100, backup: true });
    expect(flipped.commands.some((c) => c.startsWith("reload (backup flag changed"))).toBe(true);
    await router.setWeights({ a: 100 });
    expect((await router.waitHealthy("a", 5_000)).healthy).toBe(true);
    expect((await router.waitHealthy("b", 5_000)).healthy).toBe(true);
    const stats = await router.stats();
    expect(stats.find((s) => s.name === "b")).toMatchObject({ backup: true, sharePercent: 0 });
    expect(stats.find((s) => s.name === "a")).toMatchObject({ backup: false, sharePercent: 100 });
    try {
      const quiet = await new Load(router.edgeUrl(), 4, 200).run();
      expect(quiet.byBackend).toEqual({ a: 200 }); // a backup gets nothing while a regular server is up
      // the only regular server at weight 0 → the backup serves at once (warm rollback, no reload)
      await router.setWeights({ a: 0 });
      expect((await router.stats()).find((s) => s.name === "b")?.sharePercent).toBe(100);
      const flippedToBackup = await new Load(router.edgeUrl(), 4, 200).run();
      expect(flippedToBackup.byBackend).toEqual({ b: 200 });
      await router.setWeights({ a: 100 });

      const load = new Load(router.edgeUrl(), 16).start();
      await sleep(300);
      await a.kill();
      await waitFor("a DOWN", async () =>
        (await router.stats()).find((x) => x.name === "a")?.status.startsWith("DOWN") ? true : undefined,
      );
      await sleep(500);
      await a.revive();
      expect((await router.waitHealthy("a", 10_000)).healthy).toBe(true);
      await sleep(300);
      const result = await load.stop();
      console.log(
        `only regular server killed, backup serving: ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors (a ${result.byBackend.a}, backup b ${result.byBackend.b})`,
      );
      expect(result.problems).toEqual([]);
      expect(result.byBackend.b ?? 0).toBeGreaterThan(0);
    } finally {
      const back = await router.upsertServer({ name: "b", port: b.port, weight: 50 });
      expect(back.commands.some((c) => c.startsWith("reload"))).toBe(true);
      await router.setWeights({ a: 50 });
      expect((await router.waitHealthy("a", 5_000)).healthy).toBe(true);
    }
  });

  it("retries a 500 on the other server; the failing server's 5xx stay visible to the analysis", async () => {
    const load = new Load(router.edgeUrl(), 8).start();
    await sleep(200);
    const before = await router.counters();
    b.mode = "500";
    await sleep(1_000);
    b.mode = "ok";
    const after = await router.counters();
    const result = await load.stop();
    const delta = diffCounters(before, after).servers.b;
    console.log(
      `500s retried: users ${result.ok} ok / ${result.non2xx} non-2xx; b: ${delta?.attempts} attempts, ${delta?.failedAttempts} failed (retried ${delta?.retries}), error rate ${delta?.errorRate.toFixed(2)}`,
    );
    expect(result.problems).toEqual([]);
    // HAProxy counts a retried 500 only as a retry on b; the analysis must still see b failing
    expect(delta?.retries ?? 0).toBeGreaterThan(10);
    expect(delta?.failedAttempts ?? 0).toBeGreaterThan(10);
    expect(delta?.errorRate ?? 0).toBeGreaterThan(0.5);
  });

  it("reloads seamlessly under load (-x / -sf) and keeps weights and states", async () => {
    await router.setWeights({ a: 75, b: 25 });
    const edgeBefore = await router.edgeTotals();
    const countersBefore = await router.counters();
    const load = new Load(router.edgeUrl(), 16).start();
    await sleep(300);
    const pids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await router.reload();
      expect(r.pid).not.toBe(r.previousPid);
      pids.push(r.pid);
      await sleep(300);
    }
    const result = await load.stop();
    console.log(`3 reloads under load: ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors`);
    expect(result.problems).toEqual([]);
    expect(new Set(pids).size).toBe(3);
    // Counters stay monotonic across reloads. The outgoing process's last ~100 ms (snapshot → handover)
    // go uncounted, so allow a margin; without the carry only the last process's share would show.
    await sleep(200);
    const edge = await router.edgeTotals();
    const delta = diffCounters(countersBefore, await router.counters());
    const served = (delta.servers.a?.responses["2xx"] ?? 0) + (delta.servers.b?.responses["2xx"] ?? 0);
    console.log(`edge counted ${edge.requests - edgeBefore.requests} of ${result.ok} answers across reloads`);
    expect(edge.requests - edgeBefore.requests).toBeGreaterThanOrEqual(result.ok * 0.8);
    expect(edge.requests - edgeBefore.requests).toBeLessThanOrEqual(result.ok);
    expect(served).toBeGreaterThanOrEqual(result.ok * 0.8);
    expect(edge.failed - edgeBefore.failed).toBe(0);
    const stats = await router.stats();
    expect(stats.find((s) => s.name === "a")?.weight).toBe(192);
    expect(stats.find((s) => s.name === "b")?.weight).toBe(64);
  });

  it("a restart from the config reproduces the live state (drain included)", async () => {
    await router.drain("b");
    await router.stop();
    expect(await router.running()).toBeUndefined();
    expect((await router.ensureRunning()).started).toBe(true);
    const stats = await router.stats();
    expect(stats.find((s) => s.name === "a")?.weight).toBe(192);
    expect(stats.find((s) => s.name === "b")?.weight).toBe(0);
    expect((await router.readDesired()).servers.find((s) => s.name === "b")?.state).toBe("drain");
    await router.setWeights({ b: 25 });
    expect((await router.stats()).find((s) => s.name === "b")?.weight).toBe(64);
  });

  it("exports per-server response codes for Prometheus", async () => {
    await new Load(router.edgeUrl(), 4, 50).run();
    const text = await (await fetch(router.metricsUrl())).text();
    expect(text).toMatch(/haproxy_server_http_responses_total\{proxy="models",server="a",code="2xx"\} [1-9]/);
    expect(text).toContain('haproxy_server_check_status{proxy="models",server="b"');
  });
});

describe("router pure parts", () => {
  it("maps percentages to HAProxy weights 0–256 (any non-zero share stays non-zero)", () => {
    expect([0, 0.1, 5, 25, 50, 95, 100].map(percentToWeight)).toEqual([0, 1, 13, 64, 128, 243, 256]);
  });

  it("diffs counters between intervals, restarting from 0 when a counter went backwards", () => {
    const codes = (ok: number, err: number) => ({
      "1xx": 0,
      "2xx": ok,
      "3xx": 0,
      "4xx": 0,
      "5xx": err,
      other: 0,
    });
    const counters = (requests: number, ok: number, err: number, retries: number) => ({
      status: "UP",
      requests,
      responses: codes(ok, err),
      connectionErrors: 0,
      responseErrors: 0,
      retries,
      redispatches: retries,
    });
    const before = { at: 1_000, servers: { a: counters(100, 99, 1, 0), b: counters(500, 500, 0, 0) } };
    const after = {
      at: 3_000,
      servers: { a: counters(150, 148, 2, 3), b: counters(20, 20, 0, 0), c: counters(5, 5, 0, 0) },
    };
    const d = diffCounters(before, after);
    expect(d.seconds).toBe(2);
    expect(d.servers.a).toMatchObject({ requests: 50, attempts: 53, failedAttempts: 4, retries: 3 });
    expect(d.servers.a?.errorRate).toBeCloseTo(4 / 53);
    expect(d.servers.b).toMatchObject({ requests: 20, attempts: 20, failedAttempts: 0 }); // HAProxy restarted
    expect(d.servers.c).toMatchObject({ requests: 5, errorRate: 0 }); // added during the interval
  });

  it("rejects a corrupt router.json with the file named", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mstest-router-"));
    try {
      await writeFile(join(dir, "router.json"), JSON.stringify({ edge: { port: "eighty" } }));
      const err = await Router.open(dir).catch((e) => e);
      expect(isUserError(err)).toBe(true);
      expect(err.message).toMatch(/invalid router settings in .*router\.json: edge\.port/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
