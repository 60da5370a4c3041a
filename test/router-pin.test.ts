import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/rollout/wiring.js";
import { Router, RouterDesired, renderConfig, renderPinMap } from "../src/router/index.js";
import { killDaemonsOf } from "./support/leftovers.js";

/**
 * Pinning by header (docs/pinning.md) on real HAProxy 2.6 with real HTTP backends that answer with
 * their own name: a pinned request reaches exactly the version it names (stable, canary, standby,
 * shadow candidate, and one added live), an unknown version gets a one-line JSON 404 listing those
 * that run, bad values a 400, never a 500 and never another version's answer.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A model container stand-in: answers /predict and /ready with its name. */
class Backend {
  served = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly name: string,
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(name: string): Promise<Backend> {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.url === "/predict") b.served++;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ backend: name }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const b = new Backend(name, server, (server.address() as { port: number }).port);
    server.on("connection", (s) => {
      b.sockets.add(s);
      s.on("close", () => b.sockets.delete(s));
    });
    return b;
  }

  async stop(): Promise<void> {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

interface Answer {
  status: number;
  body: string;
  contentType: string | undefined;
}

/** One POST /predict through the edge with raw header lines (node's client would refuse some values). */
function predict(url: string, headers: [string, string][] = []): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = '{"text":"the flight was great"}';
    const req = http.request(`${url}/predict`, { method: "POST", agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        text += c;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: text, contentType: res.headers["content-type"] }),
      );
    });
    req.on("error", reject);
    req.setHeader("content-type", "application/json");
    req.setHeader("content-length", Buffer.byteLength(body));
    // setHeader validates values; raw sockets would be overkill: node accepts any visible ASCII + latin1
    for (const [k, v] of headers) {
      const prev = req.getHeader(k);
      req.setHeader(k, prev === undefined ? v : [...(Array.isArray(prev) ? prev : [String(prev)]), v]);
    }
    req.end(body);
  });
}

const backendOf = (a: Answer) => (JSON.parse(a.body) as { backend: string }).backend;

describe("pinning by header (real HAProxy 2.6, real backends)", () => {
  let stateDir: string;
  let router: Router;
  const b: Record<string, Backend> = {};
  const H = "x-modelship-version";

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "mstest-pin-"));
    router = new Router({
      stateDir,
      edge: { bind: "127.0.0.1", port: await freePort() },
      metrics: { bind: "127.0.0.1", port: await freePort() },
      health: { interMs: 200, fastInterMs: 100, downInterMs: 200, fall: 2, rise: 1 },
      timeouts: { hardStopAfterMs: 3_000, connectMs: 300 },
      pin: { enabled: true },
    });
    for (const name of ["v1", "v2", "v0", "v3", "v4"]) b[name] = await Backend.start(name);
    // stable v1 (90 %), canary v2 (10 %), standby v0 (warm backup), shadow candidate v3 (mirror only)
    await router.apply({
      servers: [
        { name: "v1", port: b.v1!.port, weight: 90 },
        { name: "v2", port: b.v2!.port, weight: 10 },
        { name: "v0", port: b.v0!.port, weight: 100, backup: true },
      ],
    });
    await router.setShadow({ name: "v3", port: b.v3!.port, ratePerSec: 1000 });
    for (const name of ["v1", "v2", "v0"]) expect((await router.waitHealthy(name, 5_000)).healthy).toBe(true);
  }, 30_000);

  afterAll(async () => {
    const live = await router?.running();
    if (live) process.kill(live.pid, "SIGKILL");
    if (stateDir) await killDaemonsOf(stateDir);
    await Promise.all(Object.values(b).map((x) => x.stop().catch(() => undefined)));
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("renders the pin rules and map only when enabled, and `haproxy -c` accepts both", async () => {
    const desired = await router.readDesired();
    const on = await router.render(desired);
    expect(on).toContain(`http-request set-var(txn.pin) req.fhdr(${H}) if { req.fhdr(${H}) -m found }`);
    expect(on).toContain("use-server %[var(txn.pin)] if { var(txn.pin) -m found }");
    expect(on).toContain("use_backend pin_shadow if { var(txn.pin) -m str v3 }");
    expect(on).toMatch(/lua\.shadow_req if METH_POST \{ path \/predict \} !\{ var\(txn\.pin\) -m found \}/);
    const off = renderConfig({ ...router.settings, pin: { enabled: false, header: H } }, desired);
    expect(off).not.toMatch(/txn\.pin|pin_shadow|pin\.map/);
    await router.validate(off);
    expect(await readFile(router.paths.pinMap, "utf8")).toBe(renderPinMap(desired));
    expect(renderPinMap(desired)).toContain('@running "v0","v1","v2","v3"\n');
    // a header name that could carry a directive is refused before it reaches the config
    expect(() => new Router({ stateDir, pin: { enabled: true, header: "x-a if TRUE" } })).toThrow(
      /header name/,
    );
    expect(() => new Router({ stateDir, pin: { enabled: true, header: "x-a\nlua-load /x" } })).toThrow(
      /header name/,
    );
  });

  it("a request pinned to each running version is answered by that version", async () => {
    const url = router.edgeUrl();
    for (const version of ["v1", "v2", "v0", "v3"]) {
      for (let i = 0; i < 10; i++) {
        const a = await predict(url, [[H, version]]);
        expect(a.status, a.body).toBe(200);
        expect(backendOf(a)).toBe(version);
      }
    }
    // the header name is case-insensitive, like any HTTP header
    expect(backendOf(await predict(url, [["X-ModelShip-Version", "v2"]]))).toBe("v2");
  });

  it("an unknown version gets a one-line JSON 404 naming it and the versions that run", async () => {
    const a = await predict(router.edgeUrl(), [[H, "v9"]]);
    expect(a.status).toBe(404);
    expect(a.contentType).toBe("application/json");
    expect(a.body).not.toContain("\n");
    expect(JSON.parse(a.body)).toEqual({
      error: `version v9 does not run here (${H})`,
      running: ["v0", "v1", "v2", "v3"],
    });
  });

  it("without the header: the normal weighted split, and only unpinned requests are mirrored", async () => {
    const pairs = async () =>
      (
        JSON.parse((await (await fetch(router.shadowPairsUrl())).text()).split("\n")[0]!) as {
          sampled: number;
        }
      ).sampled;
    const sampledBefore = await pairs();
    for (let i = 0; i < 10; i++) await predict(router.edgeUrl(), [[H, "v3"]]);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const name = backendOf(await predict(router.edgeUrl()));
      counts[name] = (counts[name] ?? 0) + 1;
    }
    console.log(`no header, 200 requests at v1 90 % / v2 10 %: ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).sort()).toEqual(["v1", "v2"]);
    expect(counts.v2).toBeGreaterThan(5);
    expect(counts.v2).toBeLessThan(40);
    // 200 plain requests copied (rate cap 1000/s), the 10 pinned ones not
    await sleep(300);
    expect((await pairs()) - sampledBefore).toBe(200);
  });

  it("bad header values get a 4xx JSON error, never a 500 and never a model's answer", async () => {
    const url = router.edgeUrl();
    const bad = ["v1 v2", "v1,v2", "../v1", "v1;drop", "'v1'", '"v1"', "v1%0a", "é", "-v1", "x".repeat(65)];
    for (const value of bad) {
      const a = await predict(url, [[H, value]]);
      expect(a.status, value).toBe(400);
      expect(JSON.parse(a.body).error).toMatch(/must name one version/);
    }
    const twice = await predict(url, [
      [H, "v1"],
      [H, "v2"],
    ]);
    expect(twice.status).toBe(400);
    expect((await predict(url, [[H, ""]])).status).toBe(400);
    // longer than HAProxy's buffer: HAProxy itself refuses the request (its JSON edge error)
    const huge = await predict(url, [[H, "v".repeat(20_000)]]);
    expect(huge.status).toBeGreaterThanOrEqual(400);
    expect(huge.status).toBeLessThan(500);
  });

  it("follows servers that come and go through the runtime API, without a reload", async () => {
    const pid = (await router.running())!.pid;
    const added = await router.upsertServer({ name: "v4", port: b.v4!.port, weight: 0 });
    expect(added.commands).toContain(`add map ${router.paths.pinMap} v4 models`);
    expect((await router.waitHealthy("v4", 5_000)).healthy).toBe(true);
    expect(backendOf(await predict(router.edgeUrl(), [[H, "v4"]]))).toBe("v4");
    const removed = await router.remove("v2");
    expect(removed.commands[0]).toBe(`del map ${router.paths.pinMap} v2`);
    const gone = await predict(router.edgeUrl(), [[H, "v2"]]);
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.body).running).toEqual(["v0", "v1", "v3", "v4"]);
    expect((await router.running())!.pid).toBe(pid);
    // the file matches what is live, so the next reload keeps the same answers
    expect(await readFile(router.paths.pinMap, "utf8")).toBe(renderPinMap(await router.readDesired()));
  });

  it("a pinned version that went down is never answered by another version: 503 naming it", async () => {
    await b.v4!.stop();
    for (let i = 0; i < 5; i++) {
      const a = await predict(router.edgeUrl(), [[H, "v4"]]);
      expect(a.status, a.body).toBe(503);
      expect(JSON.parse(a.body).error).toMatch(/^(version v4 did not answer|no model server)/);
    }
    // everyone else is unaffected
    expect((await predict(router.edgeUrl())).status).toBe(200);
  });

  it("disabled: the header is ignored (seamless reload with pinning off)", async () => {
    const off = new Router({ ...router.settings, pin: { enabled: false } });
    await off.reload();
    for (const value of ["v0", "v9", "bad value;"]) {
      const a = await predict(off.edgeUrl(), [[H, value]]);
      expect(a.status, value).toBe(200);
      expect(["v1"]).toContain(backendOf(a)); // v4 (down) and v0 (backup) take no regular traffic
    }
    expect((await off.render(await off.readDesired())).includes("txn.pin")).toBe(false);
    expect(
      RouterDesired.parse(await off.readDesired())
        .servers.map((s) => s.name)
        .sort(),
    ).toEqual(["v0", "v1", "v4"]);
  });

  it("turned on while HAProxy runs a config without it: the next change reloads seamlessly to load the map", async () => {
    const on = new Router({ ...router.settings, pin: { enabled: true } });
    const applied = await on.remove("v4");
    expect(applied.commands.at(-1)).toMatch(/^reload \(pin map not loaded; pid \d+ → \d+\)$/);
    expect(backendOf(await predict(on.edgeUrl(), [[H, "v0"]]))).toBe("v0");
    expect(JSON.parse((await predict(on.edgeUrl(), [[H, "v4"]])).body).running).toEqual(["v0", "v1", "v3"]);
  });
});
