import { type ChildProcess, fork } from "node:child_process";
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";
import { loadCsv } from "../../src/data/dataset.js";
import { dataPath } from "./data.js";

/**
 * Continuous load against an edge URL from a SEPARATE process (so the test's own event loop, busy
 * with deploys, never throttles the traffic): keep-alive connections, `POST /predict` with real tweets,
 * a steady request rate, every response counted by status and every connection error by code.
 */
export interface LoadOptions {
  url: string;
  /** Target requests per second (spread evenly over time). */
  rps?: number;
  /** Keep-alive connections (max requests in flight). */
  connections?: number;
  path?: string;
  /** JSON request bodies sent round-robin (default: `{"text": …}` with real tweets). */
  bodies?: string[];
}

export interface LoadReport {
  sent: number;
  completed: number;
  byStatus: Record<string, number>;
  /** Connection-level failures by error code (ECONNRESET, ECONNREFUSED, timeout…). */
  errors: Record<string, number>;
  non2xx: number;
  errorCount: number;
  durationMs: number;
  achievedRps: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests not sent because all connections were busy (the target was too slow for the rate). */
  skipped: number;
  /** Every failure with its time (ms since start), for locating them in the test log. */
  failures: Array<{ atMs: number; what: string }>;
}

export interface LoadHandle {
  /** Counters so far (requested from the child). */
  snapshot(): Promise<LoadReport>;
  /** Stops sending, waits for in-flight requests, returns the totals. */
  stop(): Promise<LoadReport>;
}

const self = fileURLToPath(import.meta.url);

export async function startLoad(options: LoadOptions): Promise<LoadHandle> {
  const child: ChildProcess = fork(self, ["--load-child"], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, MODELSHIP_LOAD_OPTIONS: JSON.stringify(options) },
  });
  const pending = new Map<number, (r: LoadReport) => void>();
  let seq = 0;
  let exited = false;
  child.on("message", (m: { id: number; report: LoadReport } | { ready: true }) => {
    if ("id" in m) {
      pending.get(m.id)?.(m.report);
      pending.delete(m.id);
    }
  });
  await new Promise<void>((resolve, reject) => {
    const onMsg = (m: { ready?: boolean }) => {
      if (m.ready) {
        child.off("message", onMsg);
        resolve();
      }
    };
    child.on("message", onMsg);
    child.once("exit", (code) => {
      exited = true;
      reject(new Error(`load generator exited early (code ${code})`));
    });
  });
  const ask = (cmd: "snapshot" | "stop") =>
    new Promise<LoadReport>((resolve, reject) => {
      if (exited) return reject(new Error("load generator is not running"));
      const id = ++seq;
      pending.set(id, resolve);
      child.send({ cmd, id });
    });
  return {
    snapshot: () => ask("snapshot"),
    stop: async () => {
      const report = await ask("stop");
      await new Promise((r) => (exited ? r(undefined) : child.once("exit", r)));
      return report;
    },
  };
}

/** Real tweets from the dataset (the same texts users would send). */
function tweets(): string[] {
  const table = loadCsv(dataPath());
  return table.rows.map((r) => r.text ?? "").filter((t) => t.trim().length > 0);
}

async function child(): Promise<void> {
  const options = JSON.parse(process.env.MODELSHIP_LOAD_OPTIONS ?? "{}") as LoadOptions;
  const rps = options.rps ?? 250;
  const connections = options.connections ?? 16;
  const target = new URL(options.path ?? "/predict", options.url);
  const bodies = options.bodies ?? tweets().map((text) => JSON.stringify({ text }));
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const byStatus: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const failures: LoadReport["failures"] = [];
  const latencies: number[] = [];
  let sent = 0;
  let completed = 0;
  let inFlight = 0;
  let skipped = 0;
  let stopping = false;
  const started = performance.now();

  const report = (): LoadReport => {
    const sorted = [...latencies].sort((a, b) => a - b);
    const q = (p: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0;
    const non2xx = Object.entries(byStatus)
      .filter(([s]) => !s.startsWith("2"))
      .reduce((a, [, n]) => a + n, 0);
    const durationMs = performance.now() - started;
    return {
      sent,
      completed,
      byStatus: { ...byStatus },
      errors: { ...errors },
      non2xx,
      errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
      durationMs,
      achievedRps: completed / (durationMs / 1000),
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      skipped,
      failures: failures.slice(0, 200),
    };
  };

  const fire = () => {
    if (inFlight >= connections * 2) {
      skipped++;
      return;
    }
    const body = bodies[sent % bodies.length]!;
    sent++;
    inFlight++;
    const t0 = performance.now();
    let done = false;
    const finish = (what: string | null, status?: number) => {
      if (done) return;
      done = true;
      inFlight--;
      completed++;
      if (status !== undefined) byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (what) {
        if (status === undefined) errors[what] = (errors[what] ?? 0) + 1;
        failures.push({ atMs: Math.round(t0 - started), what });
      }
      if (latencies.length < 200_000) latencies.push(performance.now() - t0);
    };
    const req = request(
      target,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          const s = res.statusCode ?? 0;
          finish(s >= 200 && s < 300 ? null : `HTTP ${s}`, s);
        });
        res.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    req.end(body);
  };

  // Even pacing: a 5 ms tick sends what the rate owes since the start.
  const timer = setInterval(() => {
    if (stopping) return;
    const owed = Math.floor(((performance.now() - started) / 1000) * rps) - sent - skipped;
    for (let i = 0; i < owed; i++) fire();
  }, 5);

  process.on("message", async (m: { cmd: string; id: number }) => {
    if (m.cmd === "snapshot") process.send?.({ id: m.id, report: report() });
    if (m.cmd === "stop") {
      stopping = true;
      clearInterval(timer);
      const deadline = performance.now() + 15_000;
      while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      agent.destroy();
      process.send?.({ id: m.id, report: report() }, () => process.exit(0));
    }
  });
  process.on("disconnect", () => process.exit(0));
  process.send?.({ ready: true });
}

if (process.argv.includes("--load-child")) {
  child().catch((err) => {
    console.error("load generator:", err);
    process.exit(1);
  });
}
