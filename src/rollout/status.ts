import { hostname } from "node:os";
import { serverMetrics } from "../analysis/analysis.js";
import { histogramBuckets, histogramDelta, histogramQuantile, type Sample } from "../analysis/prom.js";
import { Ledger } from "../ledger/ledger.js";
import type { Operation, Role, ShadowRecord } from "../ledger/schema.js";
import { Router } from "../router/router.js";
import { pidAlive } from "../util/process.js";
import { scrapeMetrics } from "./wiring.js";

export interface VersionStatus {
  version: string;
  role: Role;
  weight: number;
  image: string;
  digest: string | null;
  model: { name: string; version: string; sha256: string } | null;
  container: { id: string; name: string; hostPort: number } | null;
  /** HAProxy's view (UP, DOWN, DRAIN…) or "absent" when not behind the router. */
  health: string;
  reqPerSec: number | null;
  errorRate: number | null;
  p95Ms: number | null;
  createdAt: string;
  promotedAt?: string;
  standbyUntil?: string;
  failureReason?: string;
  /** The version's shadow step as judged during its deploy (from the ledger). */
  shadow?: ShadowRecord;
}

export interface HostStatus {
  stateDir: string;
  /** `pinHeader`: pinning by header is on (docs/pinning.md) with this header. */
  edge: { url: string; running: boolean; pinHeader?: string };
  versions: VersionStatus[];
  operation: (Operation & { state: "running" | "interrupted"; explanation: string }) | null;
  history: Array<Record<string, unknown>>;
}

/**
 * What runs on this host: the ledger joined with HAProxy's live view and, over a short window, each
 * version's request rate, error rate and p95 (from HAProxy's counters and the servers' /metrics).
 */
export async function hostStatus(stateDir: string, windowMs = 1000): Promise<HostStatus> {
  const ledger = new Ledger(stateDir);
  const data = await ledger.read();
  const router = await Router.open(stateDir);
  const running = await router.answers();
  const live = data.versions.filter((v) => v.container && v.role !== "retired" && v.role !== "failed");

  const snapshot = async () => {
    const stats = running ? await router.stats().catch(() => []) : [];
    const metrics = new Map<string, Sample[] | null>();
    await Promise.all(
      live.map(async (v) => metrics.set(v.version, await scrapeMetrics(v.container!.hostPort))),
    );
    return { at: Date.now(), stats, metrics };
  };
  const a = await snapshot();
  if (windowMs > 0) await new Promise((r) => setTimeout(r, windowMs));
  const b = windowMs > 0 ? await snapshot() : a;
  const seconds = Math.max(0.001, (b.at - a.at) / 1000);

  const versions: VersionStatus[] = data.versions.map((v) => {
    const s0 = a.stats.find((s) => s.name === v.version);
    const s1 = b.stats.find((s) => s.name === v.version);
    let reqPerSec: number | null = null;
    let errorRate: number | null = null;
    if (s0 && s1) {
      const total = (s: typeof s0) => Object.values(s.responses).reduce((x, y) => x + y, 0);
      const n = Math.max(0, total(s1) - total(s0));
      reqPerSec = Math.round((n / seconds) * 10) / 10;
      errorRate = n > 0 ? Math.max(0, s1.responses["5xx"] - s0.responses["5xx"]) / n : 0;
    }
    let p95Ms: number | null = null;
    const m0 = a.metrics.get(v.version);
    const m1 = b.metrics.get(v.version);
    if (m0 && m1) {
      const route = (l: Record<string, string>) => /predict|infer/.test(l.route ?? "");
      let cum = histogramDelta(
        histogramBuckets(m0, serverMetrics.latency, route),
        histogramBuckets(m1, serverMetrics.latency, route),
      );
      // No requests in the window: fall back to the server's lifetime histogram.
      if ((cum.at(-1)?.[1] ?? 0) === 0)
        cum = [...histogramBuckets(m1, serverMetrics.latency, route)].sort((x, y) => x[0] - y[0]);
      const q = histogramQuantile(0.95, cum);
      p95Ms = q === undefined ? null : Math.round(q * 10000) / 10;
    }
    return {
      version: v.version,
      role: v.role,
      weight: v.weight,
      image: v.image.ref,
      digest: v.image.digest,
      model: v.model,
      container: v.container,
      health: s1 ? s1.status : v.container ? (m1 ? "running (not behind router)" : "unreachable") : "absent",
      reqPerSec,
      errorRate,
      p95Ms,
      createdAt: v.createdAt,
      promotedAt: v.promotedAt,
      standbyUntil: v.standbyUntil,
      failureReason: v.failureReason,
      ...(v.shadow ? { shadow: v.shadow } : {}),
    };
  });

  let operation: HostStatus["operation"] = null;
  if (data.operation) {
    const op = data.operation;
    const stillRunning =
      op.host === hostname() ? pidAlive(op.pid) && (await ledger.isLocked()) : await ledger.isLocked();
    operation = {
      ...op,
      state: stillRunning ? "running" : "interrupted",
      explanation: stillRunning
        ? `${op.kind}${op.target ? ` of ${op.target}` : ""} in progress (pid ${op.pid}, since ${op.startedAt}), now at "${op.step}"`
        : `${op.kind}${op.target ? ` of ${op.target}` : ""} was interrupted at "${op.step}" (pid ${op.pid} is gone, started ${op.startedAt}); run \`modelship host repair\` or deploy again — either takes the unfinished canary out and gives the stable version all traffic`,
    };
  }
  return {
    stateDir,
    edge: {
      url: router.edgeUrl(),
      running,
      ...(router.settings.pin.enabled ? { pinHeader: router.settings.pin.header } : {}),
    },
    versions,
    operation,
    history: data.history.slice(-10),
  };
}
