import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoadReport, startLoad } from "../src/load/generator.js";
import { freePort } from "../src/rollout/wiring.js";
import { Router, routerPaths, type ShadowTargetInput } from "../src/router/index.js";
import type { ShadowHeader } from "../src/shadow/collect.js";
import type { ShadowReport } from "../src/shadow/compare.js";
import { runShadow } from "../src/shadow/run.js";
import { trainedBundle } from "./support/bundle.js";
import { tweetTexts } from "./support/data.js";
import { killDaemonsOf } from "./support/leftovers.js";
import { type RunningServer, startServer } from "./support/serving.js";

/**
 * The shadow mirror on real parts: HAProxy 2.6 running our Lua, real model servers (the real bundle,
 * an equal copy, the label-swapped model, one failing every request by its chaos switch, one that
 * accepts and never answers), load from a separate process counting every user-visible failure.
 */
const LABELS = ["negative", "positive"];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe("shadow mirror (real HAProxy Lua, real model servers)", () => {
  let stateDir: string;
  let router: Router;
  const servers: RunningServer[] = [];
  let stable: RunningServer;
  let hang: Server;
  const hangSockets = new Set<Socket>();
  let hangPort: number;

  beforeAll(async () => {
    const [good, swapped] = await Promise.all([trainedBundle(), trainedBundle({ swapped: true })]);
    stateDir = await mkdtemp(join(tmpdir(), "mstest-shadow-"));
    router = new Router({
      stateDir,
      edge: { bind: "127.0.0.1", port: await freePort() },
      metrics: { bind: "127.0.0.1", port: await freePort() },
      health: { interMs: 300, fastInterMs: 100, downInterMs: 300 },
      timeouts: { hardStopAfterMs: 3_000 },
    });
    const started = await Promise.all([
      startServer(good),
      startServer(good),
      startServer(swapped),
      startServer(good, { MODELSHIP_CHAOS_ERROR_RATE: "1" }),
    ]);
    servers.push(...started);
    stable = started[0]!;
    hang = createServer((s) => {
      hangSockets.add(s);
      s.on("close", () => hangSockets.delete(s));
      s.on("data", () => {}); // read, never answer
      s.on("error", () => {}); // HAProxy resets it when the copy times out
    });
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    hangPort = (hang.address() as { port: number }).port;
    await router.apply({ servers: [{ name: "stable", port: stable.port, weight: 100 }] });
  }, 180_000);

  afterAll(async () => {
    const live = await router?.running();
    if (live) process.kill(live.pid, "SIGKILL");
    if (stateDir) await killDaemonsOf(stateDir);
    await Promise.all(servers.map((s) => s.stop()));
    for (const s of hangSockets) s.destroy();
    hang?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  /** Load through the edge for `ms`; with a target, the shadow step (runShadow) runs meanwhile. */
  async function phase(
    target: ShadowTargetInput | null,
    ms: number,
  ): Promise<{ load: LoadReport; report: ShadowReport | null; header?: ShadowHeader; extensions?: number }> {
    const load = await startLoad({ url: router.edgeUrl(), texts: tweetTexts(), rps: 120, connections: 8 });
    try {
      if (!target) {
        await sleep(ms);
        return { load: await load.stop(), report: null };
      }
      const run = await runShadow(router, target, {
        durationMs: ms,
        maxExtensions: 2,
        thresholds: { minPairs: 100 },
        labels: LABELS,
        sleep,
      });
      return { load: await load.stop(), ...run };
    } finally {
      load.kill();
    }
  }

  const expectNoUserFailures = (load: LoadReport) => {
    expect(load.failed, JSON.stringify(load.failures.slice(0, 5))).toBe(0);
    expect(load.ok).toBeGreaterThan(100);
  };

  it("renders the mirror only when a target is set, and `haproxy -c` accepts it", async () => {
    const off = await router.render(await router.readDesired());
    expect(off).not.toMatch(/lua/);
    const on = await router.render({
      servers: [],
      shadow: {
        name: "v2",
        address: "127.0.0.1",
        port: 9,
        share: 1,
        ratePerSec: 50,
        timeoutMs: 1000,
        queue: 256,
        workers: 4,
        keep: 5000,
      },
    });
    expect(on).toMatch(/^ {4}setenv MODELSHIP_SHADOW_URL http:\/\/127\.0\.0\.1:9\/predict$/m);
    expect(on).toMatch(/^ {4}http-request lua\.shadow_req if METH_POST \{ path \/predict \}$/m);
    expect(on).toMatch(/use-service lua\.shadow_pairs if \{ path \/shadow\/pairs \}/);
    await expect(router.setShadow({ name: "bad name", port: 9 })).rejects.toThrow(/invalid shadow target/);
    await expect(router.setShadow({ name: "v2", port: 9, share: 0 })).rejects.toThrow(
      /invalid shadow target/,
    );
  });

  it("an equal candidate passes with ≥ 99 % agreement; users see only stable, none fails", async () => {
    const base = await phase(null, 3000);
    expectNoUserFailures(base.load);
    const { load, report } = await phase({ name: "equal", port: servers[1]!.port, ratePerSec: 500 }, 3000);
    expectNoUserFailures(load);
    expect(report!.pairs).toBeGreaterThanOrEqual(100);
    expect(report!.agreement).toBeGreaterThanOrEqual(0.99);
    expect(report!.meanAbsDelta).toBeLessThan(0.001);
    expect(report!.verdict).toBe("pass");
    console.log(
      `shadow equal: ${report!.summary}; stable p99 without mirror ${base.load.p99Ms.toFixed(1)} ms, with ${load.p99Ms.toFixed(1)} ms`,
    );
  }, 60_000);

  it("the label-swapped candidate fails; users see 0 failed requests", async () => {
    const { load, report } = await phase({ name: "swapped", port: servers[2]!.port, ratePerSec: 500 }, 3000);
    expectNoUserFailures(load);
    expect(report!.verdict).toBe("fail");
    expect(report!.agreement).toBeLessThan(0.5);
    expect(report!.flips.positive?.negative).toBeGreaterThan(0);
    expect(report!.examples.length).toBeGreaterThan(0);
    console.log(`shadow swapped: ${report!.summary}`);
  }, 60_000);

  it("a candidate answering 500 fails the verdict; users see 0 failed requests", async () => {
    const { load, report } = await phase({ name: "chaos", port: servers[3]!.port, ratePerSec: 500 }, 2500);
    expectNoUserFailures(load);
    expect(report!.verdict).toBe("fail");
    expect(report!.candidateErrors).toBeGreaterThanOrEqual(100);
    expect(report!.pairs).toBe(0);
    console.log(`shadow 500s: ${report!.summary}`);
  }, 60_000);

  it("a candidate that hangs costs users nothing: copies time out or are dropped, verdict fails", async () => {
    const { load, report, header } = await phase(
      { name: "hang", port: hangPort, ratePerSec: 500, timeoutMs: 300, queue: 32 },
      3000,
    );
    expectNoUserFailures(load);
    expect(report!.verdict).toBe("fail");
    expect(report!.pairs).toBe(0);
    expect(header!.dropped).toBeGreaterThan(0);
    console.log(
      `shadow hang: ${report!.summary}; ${JSON.stringify(header)}; user p99 ${load.p99Ms.toFixed(1)} ms`,
    );
  }, 60_000);

  it("the shadow step took the mirror down again: it is gone from the running config", async () => {
    expect(await router.readDesired()).not.toHaveProperty("shadow");
    expect(await readFile(routerPaths(stateDir).config, "utf8")).not.toMatch(/lua/);
    // The new process no longer serves pairs (the old one may linger briefly on its own connections).
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      status = (await fetch(router.shadowPairsUrl(0), { headers: { connection: "close" } })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).not.toBe(200);
  });
});
