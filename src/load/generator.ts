import { type ChildProcess, fork } from "node:child_process";
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";
import { stratifiedSplit } from "../../training/split.js";
import { loadCsv, loadTextDataset } from "../data/dataset.js";

/** Idle keep-alive sockets are closed after this long, below the edge's 10 s idle timeout. */
const IDLE_SOCKET_MS = 5_000;

/**
 * The one load generator of the demo, the tests and the benchmarks: `POST /predict` with real texts at a
 * steady rate over keep-alive connections, from a SEPARATE process, so the caller's own work (training,
 * deploys, assertions) never throttles it. Every response is counted by status and every connection
 * error by code: the final count is the honest one.
 */
export interface LoadOptions {
  url: string;
  /** Where the texts come from: a labelled CSV; with `split`, only the test split the trainer held out. */
  texts: LoadTexts;
  /** Target requests per second, spread evenly over time (default 100). */
  rps?: number;
  /** Keep-alive connections (default 8); at most twice as many requests are in flight. */
  connections?: number;
  /** Request path (default /predict). */
  path?: string;
  /** Own process group: a terminal Ctrl-C reaches the caller only, which stops the load in order. */
  detached?: boolean;
  /**
   * Tabular models: send named-feature bodies `{"features": {<column>: <number>, …}}` built from these
   * CSV rows instead of texts (`texts` is then ignored).
   */
  features?: LoadFeatures;
}

export interface LoadFeatures {
  data: string;
  columns: string[];
  /** Only rows whose `labelColumn` value is one of `labels` (e.g. traffic of one class). */
  only?: { labelColumn: string; labels: string[] };
}

export interface LoadTexts {
  data: string;
  textColumn: string;
  /** The split the model was trained with, so the texts are ones it has never seen. */
  split?: { labelColumn: string; labels?: string[] | undefined; seed: number; testSize: number };
}

export interface LoadReport {
  sent: number;
  completed: number;
  /** 2xx responses. */
  ok: number;
  byStatus: Record<string, number>;
  /** Connection-level failures by code (ECONNRESET, ECONNREFUSED, ETIMEDOUT…). */
  errors: Record<string, number>;
  /** Everything that was not a 2xx: non-2xx responses + connection errors. */
  failed: number;
  non2xx: number;
  errorCount: number;
  durationMs: number;
  achievedRps: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Ticks skipped because every connection was busy (the target was slower than the rate). */
  skipped: number;
  /** Distinct texts sent round-robin. */
  texts: number;
  /** The first failures with their time (ms since start), for locating them in a log. */
  failures: Array<{ atMs: number; what: string }>;
}

export interface LoadHandle {
  pid: number;
  /** Counters so far. */
  snapshot(): Promise<LoadReport>;
  /** Stops sending, waits for in-flight requests (bounded), returns the totals. */
  stop(): Promise<LoadReport>;
  /** Immediate stop without a report (cleanup after an interrupt). */
  kill(): void;
}

type ChildMessage = { ready: true; texts: number } | { id: number; report: LoadReport } | { error: string };

const self = fileURLToPath(import.meta.url);
const CHILD_FLAG = "--modelship-load-child";

export async function startLoad(options: LoadOptions): Promise<LoadHandle> {
  const child: ChildProcess = fork(self, [CHILD_FLAG], {
    // Run from the TypeScript source (tests, benches) through tsx; the compiled file needs nothing.
    execArgv: self.endsWith(".ts") ? ["--import", "tsx"] : [],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    env: { ...process.env, MODELSHIP_LOAD_OPTIONS: JSON.stringify(options) },
    detached: options.detached ?? false,
  });
  const pending = new Map<number, (r: LoadReport) => void>();
  let seq = 0;
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  child.on("message", (m: ChildMessage) => {
    if ("id" in m) {
      pending.get(m.id)?.(m.report);
      pending.delete(m.id);
    }
  });
  await new Promise<void>((resolve, reject) => {
    child.on("message", (m: ChildMessage) => {
      if ("ready" in m) resolve();
      if ("error" in m) reject(new Error(`load generator: ${m.error}`));
    });
    child.once("exit", (code) => reject(new Error(`load generator exited early (code ${code})`)));
  });
  const ask = (cmd: "snapshot" | "stop") =>
    new Promise<LoadReport>((resolve, reject) => {
      if (exited) return reject(new Error("the load generator is not running"));
      const id = ++seq;
      pending.set(id, resolve);
      child.send({ cmd, id });
    });
  return {
    pid: child.pid ?? 0,
    snapshot: () => ask("snapshot"),
    stop: async () => {
      const report = await ask("stop");
      if (!exited) await new Promise((r) => child.once("exit", r));
      return report;
    },
    kill: () => {
      if (!exited) child.kill("SIGKILL");
    },
  };
}

/** Named-feature `/predict` bodies from CSV rows. */
export function featureBodies(o: LoadFeatures): string[] {
  return loadCsv(o.data)
    .rows.filter((r) => !o.only || o.only.labels.includes((r[o.only.labelColumn] ?? "").trim()))
    .map((r) => JSON.stringify({ features: Object.fromEntries(o.columns.map((c) => [c, Number(r[c])])) }));
}

/** The texts to send: the whole CSV, or the test split exactly as the trainer split it. */
export function loadTexts(o: LoadTexts): string[] {
  if (!o.split) {
    return loadCsv(o.data)
      .rows.map((r) => r[o.textColumn] ?? "")
      .filter((t) => t.trim().length > 0);
  }
  const ds = loadTextDataset({
    path: o.data,
    textColumn: o.textColumn,
    labelColumn: o.split.labelColumn,
    labels: o.split.labels,
    onEmpty: "drop",
  });
  const split = stratifiedSplit(
    ds.examples.map((e) => e.label),
    o.split.testSize,
    o.split.seed,
  );
  return split.test.map((i) => ds.examples[i]!.text).filter((t) => t.trim().length > 0);
}

function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 10) / 10;
}

async function child(): Promise<void> {
  const o = JSON.parse(process.env.MODELSHIP_LOAD_OPTIONS ?? "{}") as LoadOptions;
  const rps = o.rps ?? 100;
  const connections = o.connections ?? 8;
  const target = new URL(o.path ?? "/predict", o.url);
  const bodies = o.features
    ? featureBodies(o.features)
    : loadTexts(o.texts).map((text) => JSON.stringify({ text }));
  if (bodies.length === 0) throw new Error("no texts to send");
  // A well-behaved keep-alive client: sockets are used in turn (FIFO), and one left idle is closed by
  // us after 5 s, before the edge's own idle timeout (HAProxy `timeout http-keep-alive`, 10 s) closes it
  // under a request being written — a race every keep-alive client must avoid or retry.
  const agent = new Agent({
    keepAlive: true,
    maxSockets: connections,
    scheduling: "fifo",
    timeout: IDLE_SOCKET_MS,
  });
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
    const ok = Object.entries(byStatus)
      .filter(([s]) => s.startsWith("2"))
      .reduce((a, [, n]) => a + n, 0);
    const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
    const durationMs = performance.now() - started;
    return {
      sent,
      completed,
      ok,
      byStatus: { ...byStatus },
      errors: { ...errors },
      failed: completed - ok,
      non2xx: completed - ok - errorCount,
      errorCount,
      durationMs: Math.round(durationMs),
      achievedRps: Math.round((completed / (durationMs / 1000)) * 10) / 10,
      p50Ms: quantile(sorted, 0.5),
      p95Ms: quantile(sorted, 0.95),
      p99Ms: quantile(sorted, 0.99),
      skipped,
      texts: bodies.length,
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
    const finish = (status: number | null, code?: string) => {
      if (done) return;
      done = true;
      inFlight--;
      completed++;
      if (status !== null) byStatus[status] = (byStatus[status] ?? 0) + 1;
      else errors[code ?? "error"] = (errors[code ?? "error"] ?? 0) + 1;
      const what =
        status === null ? (code ?? "error") : status >= 200 && status < 300 ? null : `HTTP ${status}`;
      if (what && failures.length < 200) failures.push({ atMs: Math.round(t0 - started), what });
      if (latencies.length < 500_000) latencies.push(performance.now() - t0);
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
        res.on("end", () => finish(res.statusCode ?? 0));
        res.on("error", (e: NodeJS.ErrnoException) => finish(null, e.code ?? e.message));
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => finish(null, e.code ?? e.message));
    req.end(body);
  };

  // Even pacing: every 5 ms, send what the rate owes since the start.
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
  // The caller went away (crash, kill -9): never keep sending on our own.
  process.on("disconnect", () => process.exit(0));
  process.send?.({ ready: true, texts: bodies.length });
}

if (process.argv.includes(CHILD_FLAG)) {
  child().catch((err) => {
    process.send?.({ error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
}
