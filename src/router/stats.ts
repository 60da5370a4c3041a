import { z } from "zod";
import type { StatRow } from "./runtime-api.js";
import { weightToPercent } from "./schema.js";

/** One server (model version) as HAProxy sees it right now. */
export interface ServerStats {
  name: string;
  address: string;
  /** HAProxy's status text: UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2" (going down), "no check"… */
  status: string;
  /** Only gets traffic while no regular server is up. */
  backup: boolean;
  /** Serving: UP (or going down but not yet DOWN) and not in maintenance. */
  up: boolean;
  /** Effective HAProxy weight (0–256) and the share of traffic it gets among servers that are up. */
  weight: number;
  userWeight: number;
  weightPercent: number;
  sharePercent: number;
  currentSessions: number;
  totalSessions: number;
  requests: number;
  responses: ResponseCodes;
  connectionErrors: number;
  responseErrors: number;
  /** Attempts on this server that failed and were retried elsewhere (a retried 500/503/reset lands only here). */
  retries: number;
  redispatches: number;
  /** Everything this server got wrong: 5xx + connection errors + response errors + retried attempts. */
  failedAttempts: number;
  /** HAProxy's averages over the last 1024 requests, in ms. */
  avgQueueMs: number;
  avgConnectMs: number;
  avgResponseMs: number;
  avgTotalMs: number;
  checkStatus: string;
  checkCode: string;
  checkDescription: string;
}

export interface ResponseCodes {
  "1xx": number;
  "2xx": number;
  "3xx": number;
  "4xx": number;
  "5xx": number;
  other: number;
}

const num = (v: string | undefined) => {
  const n = Number(v);
  return v === undefined || v === "" || !Number.isFinite(n) ? 0 : n;
};

/** Turns `show stat` rows of the models backend into ServerStats (FRONTEND/BACKEND rows dropped). */
export function toServerStats(rows: StatRow[]): ServerStats[] {
  const servers = rows.filter((r) => r.svname !== "FRONTEND" && r.svname !== "BACKEND");
  const parsed = servers.map((r): ServerStats => {
    const status = r.status ?? "";
    const weight = num(r.weight);
    return {
      name: r.svname ?? "",
      address: r.addr ?? "",
      status,
      backup: r.bck === "1",
      up: /^(UP|no check|DRAIN)/.test(status),
      weight,
      userWeight: r.uweight !== undefined && r.uweight !== "" ? num(r.uweight) : weight,
      weightPercent: weightToPercent(weight),
      sharePercent: 0,
      currentSessions: num(r.scur),
      totalSessions: num(r.stot),
      requests: r.req_tot !== undefined && r.req_tot !== "" ? num(r.req_tot) : num(r.stot),
      responses: {
        "1xx": num(r.hrsp_1xx),
        "2xx": num(r.hrsp_2xx),
        "3xx": num(r.hrsp_3xx),
        "4xx": num(r.hrsp_4xx),
        "5xx": num(r.hrsp_5xx),
        other: num(r.hrsp_other),
      },
      connectionErrors: num(r.econ),
      responseErrors: num(r.eresp),
      retries: num(r.wretr),
      redispatches: num(r.wredis),
      failedAttempts: num(r.hrsp_5xx) + num(r.econ) + num(r.eresp) + num(r.wretr),
      avgQueueMs: num(r.qtime),
      avgConnectMs: num(r.ctime),
      avgResponseMs: num(r.rtime),
      avgTotalMs: num(r.ttime),
      checkStatus: r.check_status ?? "",
      checkCode: r.check_code ?? "",
      checkDescription: r.check_desc ?? "",
    };
  });
  const usable = parsed.filter((s) => s.up && !s.status.startsWith("DRAIN") && s.weight > 0);
  // Backups share the traffic (option allbackups) only when no regular server is usable.
  const regular = usable.filter((s) => !s.backup);
  const serving = regular.length > 0 ? regular : usable;
  const total = serving.reduce((sum, s) => sum + s.weight, 0);
  for (const s of serving) s.sharePercent = total > 0 ? Math.round((s.weight / total) * 1000) / 10 : 0;
  return parsed;
}

/** Monotonic per-server counters at one instant; diff two to analyse an interval. */
export interface CounterSnapshot {
  at: number;
  servers: Record<string, ServerCounters>;
}

export interface ServerCounters {
  /** HAProxy status at snapshot time (not a counter; a delta carries the later one). */
  status: string;
  requests: number;
  responses: ResponseCodes;
  connectionErrors: number;
  responseErrors: number;
  retries: number;
  redispatches: number;
}

export function toSnapshot(stats: ServerStats[], at = Date.now()): CounterSnapshot {
  const servers: Record<string, ServerCounters> = {};
  for (const s of stats) {
    servers[s.name] = {
      status: s.status,
      requests: s.requests,
      responses: { ...s.responses },
      connectionErrors: s.connectionErrors,
      responseErrors: s.responseErrors,
      retries: s.retries,
      redispatches: s.redispatches,
    };
  }
  return { at, servers };
}

export interface ServerDelta extends ServerCounters {
  /** Attempts on this server in the interval: responses + connection/response errors + retried attempts. */
  attempts: number;
  /** 5xx + connection errors + response errors + retried attempts. */
  failedAttempts: number;
  /**
   * failedAttempts / attempts (0 when none). Users may have seen none of these failures (retry-on
   * moved them to another server); this is the server's own error rate, what canary analysis needs.
   */
  errorRate: number;
}

/**
 * Per-server change between two snapshots. A server absent from `before` (just added) counts from 0;
 * a counter that went backwards (HAProxy restarted, server re-added) restarts from 0 too.
 */
export function diffCounters(
  before: CounterSnapshot,
  after: CounterSnapshot,
): { seconds: number; servers: Record<string, ServerDelta> } {
  const servers: Record<string, ServerDelta> = {};
  for (const [name, a] of Object.entries(after.servers)) {
    const b = before.servers[name];
    const d = (x: number, y: number | undefined) => (y === undefined || x < y ? x : x - y);
    const responses: ResponseCodes = {
      "1xx": d(a.responses["1xx"], b?.responses["1xx"]),
      "2xx": d(a.responses["2xx"], b?.responses["2xx"]),
      "3xx": d(a.responses["3xx"], b?.responses["3xx"]),
      "4xx": d(a.responses["4xx"], b?.responses["4xx"]),
      "5xx": d(a.responses["5xx"], b?.responses["5xx"]),
      other: d(a.responses.other, b?.responses.other),
    };
    const answered = Object.values(responses).reduce((s, n) => s + n, 0);
    const connectionErrors = d(a.connectionErrors, b?.connectionErrors);
    const responseErrors = d(a.responseErrors, b?.responseErrors);
    const retries = d(a.retries, b?.retries);
    const failedAttempts = responses["5xx"] + connectionErrors + responseErrors + retries;
    const attempts = answered + connectionErrors + responseErrors + retries;
    servers[name] = {
      status: a.status,
      requests: d(a.requests, b?.requests),
      responses,
      connectionErrors,
      responseErrors,
      retries,
      redispatches: d(a.redispatches, b?.redispatches),
      attempts,
      failedAttempts,
      errorRate: attempts > 0 ? failedAttempts / attempts : 0,
    };
  }
  return { seconds: (after.at - before.at) / 1000, servers };
}

/** The edge frontend's own totals: every answer clients got, and how many were 5xx. */
export interface EdgeTotals {
  requests: number;
  failed: number;
}

/**
 * What reloaded-away HAProxy processes had counted. A seamless reload starts the new process from 0,
 * so counters are reported as live + carry to stay monotonic across reloads (interval diffs and the
 * rollout's "zero requests dropped" would otherwise lose everything before the reload). Approximate:
 * what the outgoing process answers between the snapshot and the handover (~100 ms) is not counted.
 */
export const counterCarrySchema = z.object({
  edge: z.object({ requests: z.number(), failed: z.number() }),
  servers: z.record(
    z.string(),
    z.object({
      requests: z.number(),
      responses: z.object({
        "1xx": z.number(),
        "2xx": z.number(),
        "3xx": z.number(),
        "4xx": z.number(),
        "5xx": z.number(),
        other: z.number(),
      }),
      connectionErrors: z.number(),
      responseErrors: z.number(),
      retries: z.number(),
      redispatches: z.number(),
    }),
  ),
});
export type CounterCarry = z.infer<typeof counterCarrySchema>;

export const emptyCarry = (): CounterCarry => ({ edge: { requests: 0, failed: 0 }, servers: {} });

type Counted = Omit<ServerCounters, "status">;

function addCounted(a: Counted | undefined, b: Counted): Counted {
  if (!a) return { ...b, responses: { ...b.responses } };
  const r = (k: keyof ResponseCodes) => a.responses[k] + b.responses[k];
  return {
    requests: a.requests + b.requests,
    responses: {
      "1xx": r("1xx"),
      "2xx": r("2xx"),
      "3xx": r("3xx"),
      "4xx": r("4xx"),
      "5xx": r("5xx"),
      other: r("other"),
    },
    connectionErrors: a.connectionErrors + b.connectionErrors,
    responseErrors: a.responseErrors + b.responseErrors,
    retries: a.retries + b.retries,
    redispatches: a.redispatches + b.redispatches,
  };
}

/** Folds a snapshot of a process about to be replaced into the carry. */
export function carryOver(carry: CounterCarry, live: CounterSnapshot, edge: EdgeTotals): CounterCarry {
  const servers = { ...carry.servers };
  for (const [name, c] of Object.entries(live.servers)) {
    const { status: _status, ...counted } = c;
    servers[name] = addCounted(servers[name], counted);
  }
  return {
    edge: { requests: carry.edge.requests + edge.requests, failed: carry.edge.failed + edge.failed },
    servers,
  };
}

/** Live counters plus what earlier processes counted. */
export function withCarry(live: CounterSnapshot, carry: CounterCarry): CounterSnapshot {
  const servers: Record<string, ServerCounters> = {};
  for (const [name, c] of Object.entries(live.servers)) {
    const prior = carry.servers[name];
    servers[name] = prior ? { status: c.status, ...addCounted(prior, c) } : c;
  }
  return { at: live.at, servers };
}
