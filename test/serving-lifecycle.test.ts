import { spawn } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePromText, sumOf } from "../src/analysis/prom.js";
import { trainedBundle } from "./support/bundle.js";
import { repoRoot } from "./support/data.js";
import { postJson, request, startServer } from "./support/serving.js";

let bundle: string;
const temps: string[] = [];

beforeAll(async () => {
  bundle = await trainedBundle();
});

afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

interface Outcome {
  sentAt: number;
  doneAt: number;
  ok: boolean;
  what: string;
}

/** POST /predict on a keep-alive agent; resolves with what happened (never throws). */
function predictOnce(port: number, agent: Agent, text: string): Promise<Outcome> {
  const sentAt = performance.now();
  return new Promise((resolve) => {
    const body = JSON.stringify({ text });
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        path: "/predict",
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () =>
          resolve({
            sentAt,
            doneAt: performance.now(),
            ok: res.statusCode === 200,
            what: `${res.statusCode} ${text.slice(0, 80)}`,
          }),
        );
        res.on("error", (err) =>
          resolve({ sentAt, doneAt: performance.now(), ok: false, what: err.message }),
        );
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) =>
      resolve({ sentAt, doneAt: performance.now(), ok: false, what: err.code ?? err.message }),
    );
    req.end(body);
  });
}

describe("graceful shutdown", () => {
  it("SIGTERM under keep-alive load: readiness flips at once, no request sent before the flip fails, exit 0 within the bound", async () => {
    const graceMs = 1500;
    const server = await startServer(bundle, {
      MODELSHIP_WORKERS: "2",
      MODELSHIP_DRAIN_GRACE_MS: String(graceMs),
      MODELSHIP_ACCESS_LOG: "0",
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const outcomes: Outcome[] = [];
    let stop = false;
    const clients = Array.from({ length: 16 }, async (_, c) => {
      for (let i = 0; !stop; i++) {
        const o = await predictOnce(
          server.port,
          agent,
          `client ${c} request ${i}: the flight was late but the crew was nice`,
        );
        outcomes.push(o);
        if (!o.ok) await new Promise((r) => setTimeout(r, 5));
      }
    });

    // Readiness as a load balancer sees it: fresh connection every 20 ms.
    let flipAt = Number.POSITIVE_INFINITY;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const sentAt = performance.now();
        const status = await request(`${server.url}/ready`).then(
          (r) => r.status,
          () => 0,
        );
        if (status !== 200 && flipAt === Number.POSITIVE_INFINITY) flipAt = sentAt;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    await new Promise((r) => setTimeout(r, 1500));
    const before = outcomes.length;
    const sigtermAt = performance.now();
    server.child.kill("SIGTERM");
    const code = await server.exited;
    const exitedAt = performance.now();
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    polling = false;
    await Promise.all(clients);
    await poller;
    agent.destroy();

    expect(code).toBe(0);
    expect(exitedAt - sigtermAt).toBeLessThan(graceMs + 3000);
    // The load was real.
    expect(before).toBeGreaterThan(50);
    // Readiness went false promptly.
    expect(flipAt - sigtermAt).toBeLessThan(500);
    // The promise to the load balancer: nothing sent before readiness flipped fails...
    const failedBeforeFlip = outcomes.filter((o) => o.sentAt < flipAt && !o.ok);
    expect(failedBeforeFlip, JSON.stringify(failedBeforeFlip.slice(0, 5))).toEqual([]);
    // ...nor anything sent during the grace period (less a margin for the last in-flight round trip).
    const failedInGrace = outcomes.filter((o) => o.sentAt < sigtermAt + graceMs - 300 && !o.ok);
    expect(failedInGrace, JSON.stringify(failedInGrace.slice(0, 5))).toEqual([]);
    // It kept answering new requests while draining (what the grace period is for).
    const duringGrace = outcomes.filter(
      (o) => o.ok && o.sentAt > sigtermAt && o.doneAt < sigtermAt + graceMs,
    );
    expect(duringGrace.length).toBeGreaterThan(10);
    // Once the server is gone, requests do fail: the test measures something.
    expect(outcomes.some((o) => !o.ok && o.sentAt > exitedAt)).toBe(true);

    const drained = server.logs.filter((l) => l.msg === "drained; exiting");
    expect(drained).toHaveLength(2);
  });
});

describe("startup checks", () => {
  it("refuses to become ready when the golden examples do not reproduce", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mstest-serve-"));
    temps.push(dir);
    const copy = join(dir, "bundle");
    await cp(bundle, copy, { recursive: true });
    const cardPath = join(copy, "model.json");
    const card = JSON.parse(await readFile(cardPath, "utf8"));
    const p = card.golden[3].expected.probabilities as number[];
    // Off by 1e-3: still a valid card, but not what this model.onnx computes.
    card.golden[3].expected.probabilities =
      p[0]! > 0.5 ? [p[0]! - 1e-3, p[1]! + 1e-3] : [p[0]! + 1e-3, p[1]! - 1e-3];
    await writeFile(cardPath, JSON.stringify(card));
    const err = (await startServer(copy).then(
      () => {
        throw new Error("server became ready with a mismatching golden example");
      },
      (e: unknown) => e,
    )) as { code: number; logs: { msg: string }[] };
    expect(err.code).toBe(1);
    expect(
      err.logs.some((l) => /does not reproduce 1 of \d+ golden examples/.test(l.msg) && l.msg.includes("#3")),
    ).toBe(true);
    expect(err.logs.some((l) => l.msg === "ready")).toBe(false);
  });

  it("bad settings and missing bundles exit 2 with one line, before any worker starts", async () => {
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ["dist/serving/main.js"], {
          cwd: repoRoot,
          env: { ...process.env, ...env },
        });
        let stderr = "";
        child.stderr.on("data", (d) => {
          stderr += d;
        });
        child.on("exit", (code) => resolve({ code, stderr }));
      });
    const bad = await run({ MODELSHIP_MODEL_DIR: bundle, MODELSHIP_WORKERS: "many" });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(
      /^modelship-serve: invalid server setting workers \(MODELSHIP_WORKERS\): .*number/,
    );
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    const missing = await run({ MODELSHIP_MODEL_DIR: "/nonexistent/bundle" });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/not a model bundle/);
    const unset = await run({ MODELSHIP_MODEL_DIR: "" });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/no model bundle given.*MODELSHIP_MODEL_DIR/);
  });
});

describe("modelship serve (CLI)", () => {
  it("--json: step events, a ready event with the URL, serves, and exits 0 after SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      [
        "bin/modelship.js",
        "serve",
        "--model",
        bundle,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--workers",
        "1",
        "--drain-grace",
        "200",
        "--json",
      ],
      { cwd: repoRoot, env: { ...process.env, MODELSHIP_ACCESS_LOG: "0" } },
    );
    const events: Record<string, unknown>[] = [];
    let buffered = "";
    const ready = new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          const event = JSON.parse(line) as Record<string, unknown>;
          events.push(event);
          if (event.type === "ready") resolve(event.url as string);
        }
      });
      child.once("exit", (code) => reject(new Error(`serve exited ${code} before ready`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const url = await ready;
    const res = await postJson(`${url}/predict`, { text: "lovely crew, thank you" });
    expect(res.status).toBe(200);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    // Every stdout line parsed as JSON (progress events and server logs alike).
    const steps = events.filter((e) => e.type === "step");
    expect(steps.map((e) => [e.title, e.status])).toEqual([
      ["Loading model bundle", "ok"],
      ["Starting 1 worker (golden examples must reproduce)", "ok"],
    ]);
    expect(events.some((e) => e.type === "stopped" && e.exitCode === 0)).toBe(true);
  });

  it("a bad flag is one line and exit 2", async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ["bin/modelship.js", "serve", "--model", bundle, "--workers", "two"],
        { cwd: repoRoot },
      );
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      child.on("exit", (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('modelship: --workers must be a number, got "two"');
  });
});

describe("chaos switch (testing only)", () => {
  it("MODELSHIP_CHAOS_ERROR_RATE fails that fraction of predict/infer requests with 500 and warns loudly", async () => {
    const server = await startServer(bundle, {
      MODELSHIP_CHAOS_ERROR_RATE: "0.5",
      MODELSHIP_ACCESS_LOG: "0",
    });
    try {
      expect(server.logs.some((l) => l.level === "warn" && /CHAOS SWITCH ON: 50%/.test(l.msg))).toBe(true);
      const n = 200;
      let failed = 0;
      for (let i = 0; i < n; i++) {
        const res = await postJson(`${server.url}/predict`, { text: "hello" });
        if (res.status === 500) {
          failed++;
          expect(res.json()).toEqual({ error: "chaos: injected failure (MODELSHIP_CHAOS_ERROR_RATE=0.5)" });
        } else expect(res.status).toBe(200);
      }
      expect(failed).toBeGreaterThan(60);
      expect(failed).toBeLessThan(140);
      // Health and bad input are not affected: only work that reached the model can be failed.
      expect((await request(`${server.url}/ready`)).status).toBe(200);
      for (let i = 0; i < 20; i++)
        expect((await postJson(`${server.url}/predict`, { text: 1 })).status).toBe(400);
      const metrics = parsePromText((await request(`${server.url}/metrics`)).text);
      expect(sumOf(metrics, "modelship_chaos_errors_total")).toBe(failed);
      expect(sumOf(metrics, "modelship_http_requests_total", (l) => l.status === "500")).toBe(failed);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
