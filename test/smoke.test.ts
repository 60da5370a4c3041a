import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import type { ModelCard } from "../src/contracts/card.js";
import { formatSmokeReport, runSmokeTest, v2Request, waitForReady } from "../src/smoke/smoke.js";
import { trainedBundle } from "./support/bundle.js";
import { type RunningServer, startServer } from "./support/serving.js";

/** A deliberately misbehaving HTTP server: the smoke test must report it, never crash on it. */
async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function closedPortUrl(): Promise<string> {
  const { server, url } = await listen(() => {});
  await new Promise((r) => server.close(r));
  return url;
}

describe("golden smoke test (real server, real model)", () => {
  let card: ModelCard;
  let real: RunningServer;
  const servers: Server[] = [];

  beforeAll(async () => {
    const dir = await trainedBundle();
    card = (await readBundle(dir)).card;
    real = await startServer(dir);
  });

  afterAll(async () => {
    await real?.stop();
    for (const s of servers) s.close();
  });

  it("passes against the real server serving the bundle", async () => {
    const result = await runSmokeTest({ baseUrl: real.url, card });
    expect(formatSmokeReport(result)).not.toContain("FAILED");
    expect(result.passed).toBe(true);
    expect(result.mismatches).toEqual([]);
    expect(result.maxAbsDiff).toBeLessThanOrEqual(1e-4);
  });

  it("catches a probability drift just above the tolerance, and accepts one just below", async () => {
    const nudged = (delta: number) => {
      const c = structuredClone(card);
      const ex = c.golden[5];
      if (!ex) throw new Error("need 6 golden examples");
      ex.expected.probabilities = ex.expected.probabilities.map((p, i) => (i === 0 ? p + delta : p - delta));
      return c;
    };
    const above = await runSmokeTest({ baseUrl: real.url, card: nudged(3e-4) });
    expect(above.passed).toBe(false);
    expect(above.mismatches.filter((m) => m.route.startsWith("/v2/")).map((m) => m.example)).toEqual([5, 5]);
    expect(above.mismatches.every((m) => m.example === 5)).toBe(true);
    const below = await runSmokeTest({ baseUrl: real.url, card: nudged(5e-5) });
    expect(below.passed).toBe(true);
  });

  it("waits for readiness and reports why it gave up", async () => {
    let readyAt = Date.now() + 300;
    const { server, url } = await listen((req, res) => {
      res.statusCode = req.url === "/ready" && Date.now() >= readyAt ? 200 : 503;
      res.end("{}");
    });
    servers.push(server);
    const ms = await waitForReady(url, { timeoutMs: 5000, intervalMs: 20 });
    expect(ms).toBeGreaterThanOrEqual(250);

    readyAt = Number.POSITIVE_INFINITY;
    await expect(waitForReady(url, { timeoutMs: 300, intervalMs: 20 })).rejects.toThrow(
      /not ready after \d+ ms \(\/ready answered 503\)/,
    );
    await expect(waitForReady(await closedPortUrl(), { timeoutMs: 200 })).rejects.toThrow(/ECONNREFUSED/);
  });

  it("stops waiting as soon as the server is known to be dead", async () => {
    const started = Date.now();
    await expect(
      waitForReady(await closedPortUrl(), {
        timeoutMs: 30_000,
        intervalMs: 10,
        isAlive: async () => "container exited with code 2: cannot load model",
      }),
    ).rejects.toThrow(/server stopped before it was ready: container exited with code 2: cannot load model/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("turns error answers into failed checks with the status, not exceptions", async () => {
    const { server, url } = await listen((_req, res) => {
      res.statusCode = 500;
      res.setHeader("content-type", "application/json");
      res.end('{"error":"boom"}');
    });
    servers.push(server);
    const result = await runSmokeTest({ baseUrl: url, card });
    expect(result.passed).toBe(false);
    expect(result.checks.every((c) => !c.ok)).toBe(true);
    expect(result.checks.find((c) => c.name.endsWith("/infer"))?.detail).toContain('500 {"error":"boom"}');
    expect(result.mismatches.filter((m) => m.route === "/predict")).toHaveLength(card.golden.length);
    expect(formatSmokeReport(result)).toContain("FAILED");
  });

  it("reports an unreachable server as failed checks", async () => {
    const result = await runSmokeTest({ baseUrl: await closedPortUrl(), card, requestTimeoutMs: 1000 });
    expect(result.passed).toBe(false);
    expect(result.checks.find((c) => c.name === "/metrics")?.detail).toBe("status 0");
    expect(result.checks.find((c) => c.name.endsWith("/infer"))?.detail).toMatch(
      /request failed: .*ECONNREFUSED/,
    );
  });

  it("shapes the v2 request from the bundle's input signature", () => {
    const req = v2Request(card, ["great flight", "lost my bag"]);
    const spec = card.io.inputs[0];
    expect(req.inputs[0]).toMatchObject({
      name: spec?.name,
      datatype: "BYTES",
      data: ["great flight", "lost my bag"],
    });
    expect(req.inputs[0]?.shape[0]).toBe(2);
  });
});
