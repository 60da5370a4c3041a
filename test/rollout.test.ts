import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { serverMetrics as N, type RouterCounters } from "../src/analysis/analysis.js";
import { parsePromText } from "../src/analysis/prom.js";
import { renderStatus } from "../src/cli/commands/status.js";
import { loadCsv } from "../src/data/dataset.js";
import { connectGitHub } from "../src/github/client.js";
import { trackDeployment } from "../src/github/deployments.js";
import { Ledger } from "../src/ledger/ledger.js";
import { type DeployOutcome, runDeploy, type ShadowFigures } from "../src/rollout/deploy.js";
import { decide, initialPhase } from "../src/rollout/machine.js";
import type { Candidate, RolloutDeps, RunningContainer } from "../src/rollout/ports.js";
import { runRollback } from "../src/rollout/rollback.js";
import { edgeFailure } from "../src/rollout/run.js";
import { rolloutSettingsSchema } from "../src/rollout/settings.js";
import { hostStatus } from "../src/rollout/status.js";
import {
  deploymentDescription,
  deploySummaryMarkdown,
  mdLiteral,
  shadowProgressDescription,
} from "../src/rollout/summary.js";
import { Reporter } from "../src/util/progress.js";
import { dataPath } from "./support/data.js";
import { type GitHubRecorder, startGitHubRecorder } from "./support/github-recorder.js";

/**
 * In-memory host for the state machine: a traffic layer that splits simulated requests by weight and
 * servers whose behaviour (error rate, class mix) is set per version. Time only moves when the rollout
 * sleeps, so these tests take milliseconds.
 */
interface Behaviour {
  errorRate: number;
  negShare: number;
}
class FakeHost {
  now = 1_700_000_000_000;
  rps = 200;
  weights = new Map<string, number>();
  drained = new Set<string>();
  backups = new Set<string>();
  counters = new Map<string, { ok: number; err: number; neg: number; pos: number }>();
  running = new Map<string, RunningContainer & { version: string }>();
  behaviour = new Map<string, Behaviour>();
  edge = { requests: 0, failed: 0 };
  log: string[] = [];
  nextPort = 20000;
  ports = new Map<string, number>();
  /** Servers HAProxy's health check marks DOWN. */
  down = new Set<string>();
  /** What a version's container answers on /model-info as sha256 (default: what its labels say). */
  serves = new Map<string, string>();
  /** Where the shadow step reads the mirror's pairs (a real HTTP server in the shadow tests). */
  pairsUrl = "http://127.0.0.1:9/shadow/pairs";

  simulate(ms: number) {
    const total = Math.round((this.rps * ms) / 1000);
    const live = [...this.weights].filter(([n, w]) => w > 0 && !this.drained.has(n));
    const sum = live.reduce((a, [, w]) => a + w, 0);
    for (const [name, w] of live) {
      const n = Math.round((total * w) / sum);
      const b = this.behaviour.get(name) ?? { errorRate: 0, negShare: 0.8 };
      const c = this.counters.get(name) ?? { ok: 0, err: 0, neg: 0, pos: 0 };
      const err = Math.round(n * b.errorRate);
      c.err += err;
      c.ok += n - err;
      c.neg += Math.round((n - err) * b.negShare);
      c.pos += n - err - Math.round((n - err) * b.negShare);
      this.counters.set(name, c);
      this.edge.requests += n; // HAProxy retries the 500s on another server: users see no error
    }
    this.now += ms;
  }

  metricsFor(port: number): string | null {
    const c = [...this.running.values()].find((x) => x.hostPort === port);
    if (!c) return null;
    const k = this.counters.get(c.version) ?? { ok: 0, err: 0, neg: 0, pos: 0 };
    const n = k.neg + k.pos;
    const lines = [
      `${N.requests}{route="/predict",method="POST",status="200"} ${k.ok}`,
      `${N.requests}{route="/predict",method="POST",status="500"} ${k.err}`,
      `${N.predictions}{class="negative"} ${k.neg}`,
      `${N.predictions}{class="positive"} ${k.pos}`,
    ];
    for (const le of [0.001, 0.005, 0.01])
      lines.push(`${N.latency}_bucket{route="/predict",le="${le}"} ${le >= 0.005 ? k.ok + k.err : 0}`);
    lines.push(`${N.latency}_bucket{route="/predict",le="+Inf"} ${k.ok + k.err}`);
    for (let i = 1; i <= 10; i++) lines.push(`${N.confidence}_bucket{le="${i / 10}"} ${i >= 8 ? n : 0}`);
    lines.push(`${N.confidence}_bucket{le="+Inf"} ${n}`);
    return lines.join("\n");
  }

  deps(): RolloutDeps {
    return {
      clock: {
        now: () => this.now,
        sleep: async (ms) => this.simulate(ms),
      },
      containers: {
        nameFor: (version) => `mstest-${version}`,
        list: async () =>
          [...this.running.values()].map((c) => ({
            id: c.id,
            name: c.name,
            running: true,
            hostPort: c.hostPort,
            image: `mstest/model:${c.version}`,
            model: { name: "m", version: c.version, sha256: "0".repeat(64) },
          })),
        modelInfo: async (c) => {
          const rc = [...this.running.values()].find((x) => x.id === c.id);
          return rc
            ? { name: "m", version: rc.version, sha256: this.serves.get(rc.version) ?? "0".repeat(64) }
            : null;
        },
        start: async (c: Candidate) => {
          const rc = {
            id: `id-${c.version}`,
            name: `mstest-${c.version}`,
            hostPort: this.nextPort++,
            version: c.version,
          };
          this.running.set(c.version, rc);
          if (c.env?.MODELSHIP_CHAOS_ERROR_RATE)
            this.behaviour.set(c.version, {
              errorRate: Number(c.env.MODELSHIP_CHAOS_ERROR_RATE),
              negShare: 0.8,
            });
          this.log.push(`start ${c.version}`);
          return rc;
        },
        waitReady: async () => 100,
        stopAndRemove: async (c) => {
          this.log.push(`stop ${c.name}`);
          for (const [v, rc] of this.running) if (rc.id === c.id) this.running.delete(v);
        },
        isRunning: async (c) => [...this.running.values()].some((x) => x.id === c.id),
        removeImage: async (ref) => {
          this.log.push(`rmi ${ref}`);
        },
      },
      traffic: {
        edgeUrl: () => "http://127.0.0.1:8080",
        ensureRunning: async () => {},
        attach: async (name, port, options) => {
          this.ports.set(name, port);
          this.weights.set(name, options?.backup ? 100 : 0);
          if (options?.backup) this.backups.add(name);
          this.drained.delete(name);
        },
        waitHealthy: async () => true,
        setWeights: async (w) => {
          for (const [k, v] of Object.entries(w)) {
            if (!this.weights.has(k)) throw new Error(`unknown server ${k}`);
            this.weights.set(k, v);
            if (v > 0) this.drained.delete(k);
          }
          this.log.push(`weights ${JSON.stringify(w)}`);
        },
        drain: async (name) => {
          this.drained.add(name);
        },
        standby: async (name) => {
          this.backups.add(name);
          this.drained.delete(name);
        },
        activate: async (name) => {
          this.backups.delete(name);
        },
        waitDrained: async () => ({ drained: true, sessions: 0, waitedMs: 5 }),
        detach: async (name) => {
          this.weights.delete(name);
          this.log.push(`detach ${name}`);
        },
        servers: async () => [...this.weights.keys()],
        view: async () =>
          [...this.weights].map(([name, weight]) => ({
            name,
            port:
              this.ports.get(name) ??
              [...this.running.values()].find((c) => c.version === name)?.hostPort ??
              1,
            weight,
            backup: this.backups.has(name),
            state: this.drained.has(name) ? ("drain" as const) : ("ready" as const),
            up: !this.down.has(name) && [...this.running.values()].some((c) => c.version === name),
          })),
        serverCounters: async () => {
          const out: Record<string, RouterCounters> = {};
          for (const [name] of this.weights) {
            const c = this.counters.get(name) ?? { ok: 0, err: 0 };
            out[name] = { responses: c.ok + c.err, http5xx: c.err, failures: 0, status: "UP" };
          }
          return out;
        },
        edgeCounters: async () => ({ ...this.edge }),
        setShadow: async (target) => {
          this.log.push(`shadow ${target ? target.name : "off"}`);
        },
        shadowPairsUrl: (since) => `${this.pairsUrl}?since=${since ?? 0}`,
        shadowRunning: async () => false,
      },
      scrapeMetrics: async (port) => {
        const text = this.metricsFor(port);
        return text === null ? null : parsePromText(text);
      },
      smoke: async () => "20/20 golden examples match",
    };
  }
}

const candidate = (version: string, env?: Record<string, string>): Candidate => ({
  version,
  image: { ref: `mstest/model:${version}`, digest: null },
  model: { name: "m", version, sha256: "0".repeat(64) },
  card: null,
  env,
});

const settings = rolloutSettingsSchema.parse({ intervalMs: 5000 });
const silent = new Reporter("silent");
let dir: string;
let ledger: Ledger;
let host: FakeHost;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "mstest-rollout-"));
  ledger = new Ledger(dir);
  host = new FakeHost();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function deploy(c: Candidate, s = settings) {
  const op = await ledger.begin("deploy", { target: c.version });
  try {
    return await runDeploy({ deps: host.deps(), op, candidate: c, settings: s, reporter: silent });
  } finally {
    await op.finish();
  }
}

describe("state machine", () => {
  const m = { steps: [5, 25, 50, 100], maxExtensions: 2, failureThreshold: 2 };
  it("advances, extends on inconclusive, repeats below the failure threshold, promotes after the last step", () => {
    let p = initialPhase(m);
    expect(p).toMatchObject({ kind: "analyse", step: 0 });
    p = decide(p as never, "pass", "", m);
    expect(p).toMatchObject({ kind: "analyse", step: 1, attempt: 0 });
    p = decide(p as never, "inconclusive", "few", m);
    expect(p).toMatchObject({ kind: "analyse", step: 1, attempt: 1, extensions: 1 });
    p = decide(p as never, "fail", "5xx", m);
    expect(p).toMatchObject({ kind: "analyse", step: 1, failures: 1 });
    p = decide(p as never, "fail", "5xx", m);
    expect(p).toEqual({ kind: "abort", reason: "analysis failed at 25%: 5xx" });
    expect(
      decide({ kind: "analyse", step: 2, attempt: 0, failures: 0, extensions: 0 }, "pass", "", m),
    ).toEqual({
      kind: "promote",
    });
    const stuck = decide(
      { kind: "analyse", step: 0, attempt: 2, failures: 0, extensions: 2 },
      "inconclusive",
      "x",
      m,
    );
    expect(stuck.kind).toBe("abort");
    expect(initialPhase({ ...m, steps: [100] })).toEqual({ kind: "promote" });
  });
});

describe("deploy rollout (in-memory host)", () => {
  it("first deploy goes straight to 100% after smoke and health", async () => {
    const out = await deploy(candidate("v1"));
    expect(out.status).toBe("promoted");
    expect(out.firstDeploy).toBe(true);
    expect(host.weights.get("v1")).toBe(100);
    const l = await ledger.read();
    expect(l.versions[0]).toMatchObject({ version: "v1", role: "stable", weight: 100 });
    expect(l.operation).toBeNull();
  });

  it("--model: the image built inside the rollout is what the ledger records", async () => {
    const c = candidate("v1");
    c.image = { ref: "", digest: null };
    const op = await ledger.begin("deploy");
    const out = await runDeploy({
      deps: host.deps(),
      op,
      candidate: c,
      settings,
      reporter: silent,
      build: async () => {
        c.image = { ref: "mstest/built:v1", digest: "sha256:abc" };
        return "built";
      },
    });
    await op.finish();
    expect(out.status).toBe("promoted");
    expect((await ledger.read()).versions[0]?.image).toEqual({
      ref: "mstest/built:v1",
      digest: "sha256:abc",
    });
  });

  it("a good canary steps 5→25→50 with analysis and is promoted; old stable becomes warm standby", async () => {
    await deploy(candidate("v1"));
    const out = await deploy(candidate("v2"));
    expect(out.status, out.reason).toBe("promoted");
    // 5% of 200 req/s for 5 s is 50 predictions, under the 100 the quality checks need: extended once
    expect(out.timeline.map((t) => t.label)).toEqual(["5%", "5% (+1)", "25%", "50%", "100%"]);
    expect(host.weights.get("v2")).toBe(100);
    expect(host.weights.get("v1")).toBe(0);
    expect(host.running.has("v1")).toBe(true);
    expect([...host.backups]).toEqual(["v1"]); // warm standby takes over if v2's container dies
    const l = await ledger.read();
    const v2 = l.versions.find((v) => v.version === "v2")!;
    expect(v2.role).toBe("stable");
    expect(v2.analysis.map((a) => [a.weight, a.verdict])).toEqual([
      [5, "inconclusive"],
      [5, "pass"],
      [25, "pass"],
      [50, "pass"],
    ]);
    expect(v2.analysis[0]!.canaryRequests).toBe(50); // 5% of 200 req/s over 5 s
    expect(l.versions.find((v) => v.version === "v1")).toMatchObject({ role: "standby", weight: 0 });
    expect(out.edge).toMatchObject({ failed: 0 });
    expect(out.edge.requests).toBe(4000); // four 5 s intervals at 200 req/s

    // a third deploy retires v1 (only one warm standby) and keeps v2 warm
    await deploy(candidate("v3"));
    const l3 = await ledger.read();
    expect(l3.versions.map((v) => `${v.version}:${v.role}`)).toEqual([
      "v1:retired",
      "v2:standby",
      "v3:stable",
    ]);
    expect(host.running.has("v1")).toBe(false);
  });

  it("a canary answering 500 is aborted at the first analysis; stable untouched", async () => {
    await deploy(candidate("v1"));
    const out = await deploy(candidate("v2", { MODELSHIP_CHAOS_ERROR_RATE: "1" }));
    expect(out.status).toBe("aborted");
    expect(out.reason).toMatch(/analysis failed at 5%: error-rate: canary 5xx\/error rate 100\.00%/);
    expect(out.timeline).toHaveLength(1);
    expect(host.weights.get("v1")).toBe(100);
    expect(host.weights.has("v2")).toBe(false);
    expect(host.running.has("v2")).toBe(false);
    const l = await ledger.read();
    expect(l.versions.find((v) => v.version === "v1")).toMatchObject({ role: "stable", weight: 100 });
    expect(l.versions.find((v) => v.version === "v2")).toMatchObject({ role: "failed", container: null });
    expect(l.versions.find((v) => v.version === "v2")?.failureReason).toMatch(/error-rate/);
  });

  it("a flipped model (200 OK) is aborted by the quality check", async () => {
    await deploy(candidate("v1"));
    host.behaviour.set("v2", { errorRate: 0, negShare: 0.2 });
    const out = await deploy(candidate("v2"));
    expect(out.status).toBe("aborted");
    expect(out.reason).toMatch(/class-mix/);
  });

  it("too little traffic extends the step, then aborts instead of promoting blind", async () => {
    await deploy(candidate("v1"));
    host.rps = 10;
    const out = await deploy(candidate("v2"));
    expect(out.status).toBe("aborted");
    expect(out.reason).toMatch(/not enough data .* after 4 intervals/);
    expect(out.timeline).toHaveLength(4);
    const allowed = await deploy(
      candidate("v3"),
      rolloutSettingsSchema.parse({ intervalMs: 5000, allowNoData: true }),
    );
    expect(allowed.status).toBe("promoted");
  });

  it("an interrupted deploy is repaired by the next one", async () => {
    await deploy(candidate("v1"));
    // simulate a crash: canary attached at 25%, operation left in the ledger, lock holder gone
    const op = await ledger.begin("deploy", { target: "v2" });
    await op.update((l) => {
      l.versions.push({
        version: "v2",
        image: { ref: "x:v2", digest: null },
        model: null,
        container: { id: "id-v2", name: "mstest-v2", hostPort: 1 },
        role: "canary",
        weight: 25,
        createdAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
        analysis: [],
      });
    });
    await op.advance({ name: "canary", version: "v2", step: 1, weight: 25 });
    host.running.set("v2", { id: "id-v2", name: "mstest-v2", hostPort: 1, version: "v2" });
    host.weights.set("v2", 25);
    host.weights.set("v1", 75);
    await op.release(); // the lock goes, the operation record stays (as after kill -9)
    const out = await deploy(candidate("v3"));
    expect(out.repaired.join("\n")).toMatch(
      /removed the unfinished canary v2 \(interrupted: the deploy .* stopped at "weight 25"\)/,
    );
    expect(out.status).toBe("promoted");
    const l = await ledger.read();
    expect(l.versions.find((v) => v.version === "v2")).toMatchObject({ role: "failed" });
    expect(host.running.has("v2")).toBe(false);
  });

  it("a container serving another model than its labels say is aborted before any traffic moves", async () => {
    await deploy(candidate("v1"));
    host.serves.set("v2", "f".repeat(64));
    const out = await deploy(candidate("v2"));
    expect(out.status).toBe("aborted");
    expect(out.reason).toMatch(/serves another model than its labels say: sha256/);
    expect(host.log.some((l) => l.includes('"v2":5'))).toBe(false);
    expect(host.weights.get("v1")).toBe(100);
  });

  it("the stable version's label on another model (sha256) is an error, not 'nothing to deploy'", async () => {
    await deploy(candidate("v1"));
    const other = { ...candidate("v1"), model: { name: "m", version: "v1", sha256: "b".repeat(64) } };
    await expect(deploy(other)).rejects.toThrow(/a version names exactly one model|sha256 bbbbbbbbbbbb/);
    expect((await deploy(candidate("v1"))).status).toBe("unchanged");
  });

  it("a rollout during which the edge saw failed requests is not a success (exit 1)", () => {
    const edge = { url: "http://127.0.0.1:8080", requests: 1000, failed: 0 };
    expect(edgeFailure("deploy of v2", edge)).toBeNull();
    const err = edgeFailure("deploy of v2", { ...edge, failed: 3 });
    expect(err?.exitCode).toBe(1);
    expect(err?.message).toBe(
      "deploy of v2: 3 of 1000 requests through the edge http://127.0.0.1:8080 failed meanwhile",
    );
  });

  it("pruning removes only images a deploy of this state dir built", async () => {
    const built = (v: string): Candidate => ({
      ...candidate(v),
      image: { ref: `built/model:${v}`, digest: null, builtHere: true },
    });
    const few = rolloutSettingsSchema.parse({ intervalMs: 5000, keepImages: 1, allowNoData: true });
    for (const c of [candidate("v1"), built("v2"), built("v3"), built("v4"), candidate("v5")])
      await deploy(c, few);
    const removed = host.log.filter((l) => l.startsWith("rmi ")).map((l) => l.slice(4));
    expect(removed).toContain("built/model:v2");
    expect(removed.some((r) => r.startsWith("mstest/model:"))).toBe(false);
  });

  it("rollback: warm standby is a weight flip; without a standby it starts a container (cold)", async () => {
    await deploy(candidate("v1"));
    await deploy(candidate("v2"));
    const op = await ledger.begin("rollback");
    const warm = await runRollback({
      deps: host.deps(),
      op,
      settings,
      reason: "bad drift",
      by: "alice",
      reporter: silent,
    });
    await op.finish();
    expect(warm).toMatchObject({ version: "v1", from: "v2", mode: "warm" });
    expect(host.weights.get("v1")).toBe(100);
    expect(host.weights.get("v2")).toBe(0);
    const l = await ledger.read();
    expect(l.history.at(-1)).toMatchObject({
      kind: "rollback",
      version: "v1",
      from: "v2",
      by: "alice",
      reason: "bad drift",
    });
    expect(l.versions.find((v) => v.version === "v2")?.role).toBe("standby");
    expect([...host.backups]).toEqual(["v2"]);

    // the standby's container dies: the next rollback notices and goes cold
    host.running.delete("v2");
    const op2 = await ledger.begin("rollback");
    const cold = await runRollback({
      deps: host.deps(),
      op: op2,
      settings,
      to: "v2",
      reason: "forward",
      by: "bob",
      reporter: silent,
    });
    await op2.finish();
    expect(cold.mode).toBe("cold");
    expect(host.weights.get("v2")).toBe(100);
    expect(host.running.has("v2")).toBe(true);
  });
});

/**
 * The shadow verdict on every surface (issue 16 item 3), from the real code path: the mirror's NDJSON
 * (exactly what lua.shadow_pairs serves, built from real tweets of ../shared) read by the real collector,
 * judged by compareShadow inside runDeploy, written to the ledger, then shown by the progress line,
 * `status` (from that ledger), the job summary and the GitHub Deployment status.
 */
describe("shadow verdict surfaces (in-memory host, real mirror format, real ledger)", () => {
  let pairsServer: Server;
  let records: string[] = [];
  let rec: GitHubRecorder;
  const HOSTILE = "<img src=x onerror=alert(1)> @octocat [win](http://evil.example) **bold** | pipe `code`";
  const tweets = loadCsv(dataPath())
    .rows.filter((r) => r.airline_sentiment === "negative" || r.airline_sentiment === "positive")
    .slice(0, 300)
    .map((r) => ({ text: r.text ?? "", label: r.airline_sentiment as "negative" | "positive" }));

  /** The mirror's ring as lua.shadow_pairs renders it: stable's answer, the candidate's (or its error). */
  function mirror(n: number, disagree: number, errors: number, firstText?: string): void {
    records = [];
    for (let i = 0; i < n; i++) {
      const t = tweets[i]!;
      const text = i === 0 && firstText ? firstText : t.text;
      const flip = i < disagree;
      const failed = !flip && i >= n - errors;
      const other = t.label === "negative" ? "positive" : "negative";
      records.push(
        JSON.stringify({
          seq: i + 1,
          request: JSON.stringify({ text }),
          stable: JSON.stringify({ sentiment: t.label, confidence: 91.5 }),
          stableMs: 3.2 + (i % 5),
          status: failed ? 500 : 200,
          candidate: failed
            ? '{"error":"chaos"}'
            : JSON.stringify({ sentiment: flip ? other : t.label, confidence: flip ? 77 : 90.5 + (i % 3) }),
          candidateMs: 4 + (i % 7),
          error: "",
        }),
      );
    }
  }

  beforeAll(async () => {
    pairsServer = createServer((req, res) => {
      const since = Number(new URL(req.url ?? "/", "http://x").searchParams.get("since") ?? 0);
      const header = {
        seq: records.length,
        sampled: records.length,
        dropped: 0,
        skipped: 0,
        errors: 0,
        queued: 0,
      };
      res.setHeader("content-type", "application/x-ndjson");
      res.end(`${[JSON.stringify(header), ...records.slice(since)].join("\n")}\n`);
    });
    await new Promise<void>((r) => pairsServer.listen(0, "127.0.0.1", r));
    rec = await startGitHubRecorder();
  });
  afterAll(async () => {
    await new Promise((r) => pairsServer.close(r));
    await rec.close();
  });

  /** A deploy with a 5 s shadow step; its human progress lines captured. */
  async function shadowDeploy(
    c: Candidate,
    listen: (event: Record<string, unknown>) => void = () => {},
  ): Promise<{ out: DeployOutcome; lines: string }> {
    host.pairsUrl = `http://127.0.0.1:${(pairsServer.address() as { port: number }).port}/shadow/pairs`;
    let lines = "";
    const stream = {
      isTTY: false,
      write: (t: string) => {
        lines += t;
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    const op = await ledger.begin("deploy", { target: c.version });
    try {
      const out = await runDeploy({
        deps: host.deps(),
        op,
        candidate: c,
        settings: rolloutSettingsSchema.parse({ intervalMs: 5000, shadowMs: 5000 }),
        reporter: new Reporter("human", stream).listen(listen),
      });
      return { out, lines };
    } finally {
      await op.finish();
    }
  }

  it("pass and fail: progress line, ledger, status after the fact, job summary, GitHub Deployment", async () => {
    await deploy(candidate("v1"));
    // Each deploy runs the way the canary-deploy action runs it: inside a GitHub Deployment (here the
    // recorder), the deploy's `shadow` event posted at once as an in_progress note, and the outcome
    // as the final status's description.
    const gh = connectGitHub({ token: "t", repository: "acme/models", apiUrl: rec.url });
    rec.take();
    const tracked = async (c: Candidate) => {
      let run: { out: DeployOutcome; lines: string } | undefined;
      await trackDeployment(
        gh,
        {
          ref: "abc",
          environment: "production",
          payload: { kind: "deploy", modelVersion: c.version },
          describe: () => (run ? deploymentDescription(run.out) : undefined),
        },
        async (_deployment, progress) => {
          run = await shadowDeploy(c, (e) => {
            if (e.type === "shadow")
              progress(shadowProgressDescription(c.version, e as unknown as ShadowFigures));
          });
          if (run.out.status === "aborted") throw new Error(`canary ${c.version} aborted: ${run.out.reason}`);
        },
      ).catch((err: Error) => expect(err.message).toMatch(/aborted: shadow step failed/));
      return run!;
    };

    // v2 answers like stable but for one request: passes, then the canary steps promote it
    mirror(150, 1, 0);
    const pass = await tracked(candidate("v2"));
    expect(pass.out.status, pass.out.reason).toBe("promoted");
    const passLine = pass.lines.split("\n").find((l) => l.startsWith("Shadow 5s... "));
    expect(passLine).toMatch(
      /^Shadow 5s\.\.\. ✓ \(150 pairs, agreement 99\.3% \[96\.3–99\.9\], mean \|Δp\| 0\.0\d\d \(p95 0\.0\d\d\), candidate 0 errors, p95 10 ms: pass\)/,
    );

    // v3 flips 60 of 150 answers and fails 3: aborted before any weight moved
    mirror(150, 60, 3, HOSTILE);
    const fail = await tracked(candidate("v3"));
    expect(fail.out.status).toBe("aborted");
    expect(fail.out.reason).toMatch(/^shadow step failed: /);
    expect(host.log.filter((l) => l.includes('"v3":5'))).toEqual([]);
    expect(fail.lines).toMatch(
      /^Shadow 5s\.\.\. ✗ 147 pairs, agreement 59\.2% \[[\d.]+–[\d.]+\], .*candidate 3 errors, p95 10 ms: fail/m,
    );

    // the ledger keeps each verdict with its figures (no request text)
    const l = await ledger.read();
    const v2 = l.versions.find((v) => v.version === "v2")!;
    const v3 = l.versions.find((v) => v.version === "v3")!;
    expect(v2.shadow).toMatchObject({ verdict: "pass", pairs: 150, agreements: 149, candidateErrors: 0 });
    expect(v2.shadow!.agreementCi!.low).toBeCloseTo(0.963, 3);
    expect(v3).toMatchObject({ role: "failed", shadow: { verdict: "fail", pairs: 147, candidateErrors: 3 } });
    expect(v3.shadow!.flips).toEqual(fail.out.shadow!.flips);
    expect(JSON.stringify(l)).not.toContain("octocat");

    // `modelship status`, read back from that ledger afterwards (on a host with pinning on)
    await writeFile(join(dir, "router.json"), JSON.stringify({ pin: { enabled: true } }));
    const status = await hostStatus(dir, 0);
    expect(status.edge.pinHeader).toBe("x-modelship-version");
    expect(status.versions.find((v) => v.version === "v3")?.shadow?.verdict).toBe("fail");
    const text = renderStatus(status);
    expect(text).toContain(
      "Pinning: on — `curl -H 'x-modelship-version: <version>' http://127.0.0.1:8080/predict …` is answered by that version",
    );
    expect(text).toMatch(
      /^v2 shadow step \(\d{4}-\d\d-\d\dT[\d:]+Z\): 150 pairs, agreement 99\.3% .*: pass$/m,
    );
    expect(text).toMatch(
      /^v3 shadow step \(.*\): 147 pairs, agreement 59\.2% .*candidate 3 errors, p95 10 ms: fail$/m,
    );

    // the canary-deploy job summary: verdict, checks, latency, flip matrix, disagreeing requests
    const md = deploySummaryMarkdown(fail.out);
    expect(md).toContain("### Shadow step: ❌ fail");
    expect(md).toMatch(/\| candidate failed 3 of 150 mirrored requests \| 0\.02 \| 0\.01 \| fail \|/);
    expect(md).toMatch(
      /Latency on the mirrored requests: candidate p50 \d+ ms, p95 10 ms; stable p95 7 ms\./,
    );
    const negFlips = fail.out.shadow!.flips.negative!;
    expect(md).toContain(`| **negative** | ${negFlips.negative ?? 0} | ${negFlips.positive ?? 0} |`);
    expect(md).toContain("3 of the 60 requests that got different answers (texts truncated):");
    expect(md).toMatch(/\| request \| stable answered \| candidate answered \|/);
    expect(md).toMatch(/\| (negative|positive) \(0\.92\) \| (negative|positive) \(0\.77\) \|$/m);
    // a user's text is inert: no HTML, mention, link, emphasis or cell break survives
    const row = md.split("\n").find((r) => r.includes("octocat"))!;
    expect(row).toContain(
      "&#60;img src=x onerror=alert\\(1\\)&#62; &#64;octocat \\[win\\]\\(http://evil\\.example\\)",
    );
    expect(row).not.toMatch(/<img|@octocat|\]\(http|[^\\]\*\*/);
    expect(row.split(" | ")).toHaveLength(3);
    // the other examples: real tweets, cut to 80 characters, escaped the same way
    const cut = (t: string) => (t.length <= 80 ? t : `${t.slice(0, 79)}…`);
    expect(md, md).toContain(`| ${mdLiteral(cut(tweets[1]!.text))} |`);
    expect(deploySummaryMarkdown(pass.out)).toContain("### Shadow step: ✅ pass");

    // the GitHub Deployment: the verdict as soon as it is known, then in the final status (≤ 140 characters)
    const statuses = rec.calls
      .filter((c) => c.path.endsWith("/statuses"))
      .map((c) => c.body as { state: string; description: string });
    expect(statuses.map((x) => x.state)).toEqual([
      "in_progress",
      "in_progress",
      "success",
      "in_progress",
      "in_progress",
      "failure",
    ]);
    expect(statuses[1]!.description).toMatch(
      /^v2 shadow pass: 99\.3% agree \[96\.3–99\.9\] \(150 pairs\), \|Δp\| mean 0\.\d{3} p95 0\.\d{3}, candidate 0 errors p95 10 ms; canary steps next$/,
    );
    expect(statuses[2]!.description).toMatch(
      /^v2 is live; shadow pass: 99\.3% agree \[96\.3–99\.9\] \(150 pairs\)/,
    );
    expect(statuses[4]!.description).toMatch(/^v3 shadow fail: 59\.2% agree .*; aborting$/);
    expect(statuses[5]!.description).toMatch(
      /^v3 aborted; shadow fail: 59\.2% agree \[[\d.]+–[\d.]+\] \(147 pairs\), \|Δp\| mean 0\.\d{3} p95 0\.\d{3}, candidate 3 errors p95 10 ms$/,
    );
    for (const f of statuses) expect(f.description.length).toBeLessThanOrEqual(140);
  });

  it("no request text anywhere when the prediction log hashes text", async () => {
    await deploy(candidate("v1"));
    mirror(150, 60, 0, HOSTILE);
    const { out } = await shadowDeploy(candidate("v2", { MODELSHIP_PREDICTION_LOG_HASH_TEXT: "on" }));
    expect(out.status).toBe("aborted");
    expect(out.shadow).toMatchObject({ verdict: "fail", inputsHidden: true, examples: [] });
    const md = deploySummaryMarkdown(out);
    expect(md).toContain(
      "_60 requests got different answers; their texts are not shown: the prediction log hashes text (MODELSHIP_PREDICTION_LOG_HASH_TEXT)._",
    );
    expect(md).toContain("| **negative** |"); // the flip matrix is still there
    for (const t of [HOSTILE, tweets[1]!.text, tweets[2]!.text]) {
      expect(md).not.toContain(t.slice(0, 12));
      expect(JSON.stringify(out)).not.toContain(t.slice(0, 12));
    }
  });
});
