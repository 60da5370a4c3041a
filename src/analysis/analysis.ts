import { z } from "zod";
import type { Reference } from "../contracts/card.js";
import {
  binsFromCumulative,
  counterDelta,
  deltaMap,
  histogramBuckets,
  histogramDelta,
  histogramQuantile,
  type LabelFilter,
  type Sample,
  sumBy,
  sumOf,
} from "./prom.js";

/**
 * Canary analysis: pure functions from two scrapes (start and end of an interval) of canary and stable
 * to a verdict. Every check says what it measured, against what, and why it passed or failed.
 */

/** Names of the model server's Prometheus series (serving/). */
export const serverMetrics = {
  requests: "modelship_http_requests_total",
  statusLabel: "status",
  routeLabel: "route",
  latency: "modelship_http_request_duration_seconds",
  predictions: "modelship_predictions_total",
  classLabel: "class",
  confidence: "modelship_prediction_confidence",
};
export type ServerMetricNames = typeof serverMetrics;

/** HAProxy's per-server counters at one moment. */
export interface RouterCounters {
  /** Responses the server sent (sum of hrsp_*). */
  responses: number;
  http5xx: number;
  /** Connection and response errors (econ + eresp): retried by HAProxy, but the server's fault. */
  failures: number;
  /** HAProxy's view: UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/3"... */
  status: string;
}

export interface ServerSnapshot {
  router: RouterCounters | null;
  /** The server's own /metrics; null when the scrape failed. */
  metrics: Sample[] | null;
}

export interface Scrape {
  at: number;
  canary: ServerSnapshot;
  stable: ServerSnapshot | null;
}

export const analysisConfigSchema = z.object({
  /** Largest canary 5xx share of its responses. */
  maxErrorRate: z.number().min(0).max(1).default(0.01),
  /** Canary responses needed before rates and latency mean anything. */
  minRequests: z.number().int().min(1).default(20),
  maxP95Ms: z.number().positive().default(250),
  maxP99Ms: z.number().positive().default(500),
  /** Canary p95/p99 may be at most this multiple of stable's (plus latencySlackMs, for sub-ms noise). */
  latencyFactor: z.number().min(1).default(2),
  latencySlackMs: z.number().min(0).default(20),
  /** Observations a quantile needs before it is judged (p99 of 50 requests is one request). */
  minLatencySamples: z
    .object({ p95: z.number().int().min(1).default(50), p99: z.number().int().min(1).default(200) })
    .prefault({}),
  /** Predictions needed on the canary before the quality checks judge. */
  minPredictions: z.number().int().min(1).default(100),
  /** Largest total-variation distance between canary and stable class mix (0 = same, 1 = disjoint). */
  maxClassShift: z.number().min(0).max(1).default(0.15),
  /** Largest population stability index between canary and stable confidence histograms. */
  maxPsi: z.number().min(0).default(0.25),
  /** Also compare the canary's class mix with the bundle's reference (test split); off when unset. */
  maxReferenceShift: z.number().min(0).max(1).optional(),
});
export type AnalysisConfig = z.infer<typeof analysisConfigSchema>;

export type CheckStatus = "pass" | "fail" | "inconclusive";

export interface CheckResult {
  name: string;
  status: CheckStatus;
  value: number | null;
  threshold: number | null;
  message: string;
}

export interface IntervalFigures {
  seconds: number;
  canaryRequests: number;
  canaryErrors: number;
  stableRequests: number;
  stableErrors: number;
  canaryP95Ms?: number;
  canaryP99Ms?: number;
  stableP95Ms?: number;
  stableP99Ms?: number;
  canaryClassMix: Record<string, number>;
  stableClassMix: Record<string, number>;
  canaryPredictions: number;
  stablePredictions: number;
}

export interface AnalysisResult {
  verdict: CheckStatus;
  checks: CheckResult[];
  figures: IntervalFigures;
  /** One line for humans: the figures behind the verdict. */
  summary: string;
}

const predictRoute: LabelFilter = (labels) => {
  const route = labels[serverMetrics.routeLabel];
  return route === undefined || /predict|infer/.test(route);
};

interface ServerDelta {
  responses: number;
  errors: number;
  p95?: number;
  p99?: number;
  latencySamples: number;
  classCounts: Map<string, number>;
  predictions: number;
  confidenceBins: number[];
  healthy: boolean;
  statusText: string;
}

function serverDelta(start: ServerSnapshot, end: ServerSnapshot): ServerDelta {
  const routerResponses =
    start.router && end.router ? counterDelta(start.router.responses, end.router.responses) : 0;
  const routerErrors =
    start.router && end.router
      ? counterDelta(start.router.http5xx, end.router.http5xx) +
        counterDelta(start.router.failures, end.router.failures)
      : 0;
  let serverResponses = 0;
  let serverErrors = 0;
  let p95: number | undefined;
  let p99: number | undefined;
  let latencySamples = 0;
  let classCounts = new Map<string, number>();
  let confidenceBins: number[] = [];
  if (start.metrics && end.metrics) {
    const m0 = start.metrics;
    const m1 = end.metrics;
    // Only prediction traffic: health checks and scrapes would dilute the rate.
    const is5xx: LabelFilter = (l) => predictRoute(l) && /^5/.test(l[serverMetrics.statusLabel] ?? "");
    serverResponses = counterDelta(
      sumOf(m0, serverMetrics.requests, predictRoute),
      sumOf(m1, serverMetrics.requests, predictRoute),
    );
    serverErrors = counterDelta(
      sumOf(m0, serverMetrics.requests, is5xx),
      sumOf(m1, serverMetrics.requests, is5xx),
    );
    const lat = histogramDelta(
      histogramBuckets(m0, serverMetrics.latency, predictRoute),
      histogramBuckets(m1, serverMetrics.latency, predictRoute),
    );
    latencySamples = lat.at(-1)?.[1] ?? 0;
    const q95 = histogramQuantile(0.95, lat);
    const q99 = histogramQuantile(0.99, lat);
    p95 = q95 === undefined ? undefined : q95 * 1000;
    p99 = q99 === undefined ? undefined : q99 * 1000;
    classCounts = deltaMap(
      sumBy(m0, serverMetrics.predictions, serverMetrics.classLabel),
      sumBy(m1, serverMetrics.predictions, serverMetrics.classLabel),
    );
    confidenceBins = binsFromCumulative(
      histogramDelta(
        histogramBuckets(m0, serverMetrics.confidence),
        histogramBuckets(m1, serverMetrics.confidence),
      ),
    );
  }
  const predictions = [...classCounts.values()].reduce((a, b) => a + b, 0);
  const statusText = end.router?.status ?? "unknown";
  return {
    // HAProxy and the server count differently (HAProxy books a retried 500 as a retry; the server
    // sees every attempt): judge by the source that saw more errors, with its own denominator.
    ...(serverErrors > routerErrors
      ? { responses: serverResponses, errors: serverErrors }
      : { responses: Math.max(routerResponses, routerErrors), errors: routerErrors }),
    p95,
    p99,
    latencySamples,
    classCounts,
    predictions,
    confidenceBins,
    healthy: end.metrics !== null && (end.router === null || /^(UP|NOLB|DRAIN)/.test(statusText)),
    statusText,
  };
}

const pct = (x: number, digits = 1) => `${(x * 100).toFixed(digits)}%`;
const ms = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)}ms`;

export function shares(counts: Map<string, number>): Record<string, number> {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  for (const [k, v] of counts) out[k] = total > 0 ? v / total : 0;
  return out;
}

/** Total-variation distance between two distributions over labels: half the L1 distance. */
export function totalVariation(a: Record<string, number>, b: Record<string, number>): number {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  let sum = 0;
  for (const k of keys) sum += Math.abs((a[k] ?? 0) - (b[k] ?? 0));
  return sum / 2;
}

/**
 * Population stability index of `actual` against `expected` (bin counts), with a small floor per bin
 * so an empty bin does not make it infinite.
 */
export function psi(expected: number[], actual: number[]): number {
  const n = Math.max(expected.length, actual.length);
  const te = expected.reduce((a, b) => a + b, 0);
  const ta = actual.reduce((a, b) => a + b, 0);
  if (te === 0 || ta === 0) return 0;
  const floor = 1e-4;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.max((expected[i] ?? 0) / te, floor);
    const a = Math.max((actual[i] ?? 0) / ta, floor);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

function mixText(mix: Record<string, number>): string {
  const entries = Object.entries(mix).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([k, v]) => `${k} ${pct(v, 0)}`).join(" / ") : "none";
}

/**
 * Judges one interval. `allowNoData` lets checks that lack data pass (demos with no traffic); by
 * default they are inconclusive, and the rollout extends the step instead of promoting blind.
 */
export function analyseInterval(
  start: Scrape,
  end: Scrape,
  config: AnalysisConfig,
  options: { reference?: Reference; allowNoData?: boolean } = {},
): AnalysisResult {
  const canary = serverDelta(start.canary, end.canary);
  const stable = start.stable && end.stable ? serverDelta(start.stable, end.stable) : undefined;
  const checks: CheckResult[] = [];
  const noData = (name: string, message: string, threshold: number | null): CheckResult => ({
    name,
    status: options.allowNoData ? "pass" : "inconclusive",
    value: null,
    threshold,
    message: options.allowNoData ? `${message} (allowed: --allow-no-data)` : message,
  });

  checks.push({
    name: "healthy",
    status: canary.healthy ? "pass" : "fail",
    value: canary.healthy ? 1 : 0,
    threshold: 1,
    message: canary.healthy
      ? `canary is up (HAProxy: ${canary.statusText}) and serving metrics`
      : `canary is not healthy (HAProxy: ${canary.statusText}${end.canary.metrics === null ? ", /metrics unreachable" : ""})`,
  });

  // Errors are judged even on little traffic: a burst of 5xx is evidence enough.
  const errorRate = canary.responses > 0 ? canary.errors / canary.responses : 0;
  if (canary.responses < config.minRequests && canary.errors === 0) {
    checks.push(
      noData(
        "error-rate",
        `only ${canary.responses} canary responses (need ${config.minRequests}) to judge the error rate`,
        config.maxErrorRate,
      ),
    );
  } else {
    const ok = errorRate <= config.maxErrorRate;
    checks.push({
      name: "error-rate",
      status: ok ? "pass" : "fail",
      value: errorRate,
      threshold: config.maxErrorRate,
      message: `canary 5xx/error rate ${pct(errorRate, 2)} (${canary.errors}/${canary.responses}) ${ok ? "≤" : ">"} ${pct(config.maxErrorRate, 2)}`,
    });
  }

  for (const [name, q, limit] of [
    ["latency-p95", "p95", config.maxP95Ms],
    ["latency-p99", "p99", config.maxP99Ms],
  ] as const) {
    const value = canary[q];
    if (value === undefined || canary.responses < config.minRequests) {
      checks.push(noData(name, `not enough canary requests to measure ${q} latency`, limit));
      continue;
    }
    const needed = config.minLatencySamples[q];
    if (canary.latencySamples < needed) {
      // Too few samples for this quantile to mean anything: say so, and let the other checks decide.
      checks.push({
        name,
        status: "pass",
        value,
        threshold: null,
        message: `${q} not judged yet: ${canary.latencySamples} canary requests (needs ${needed}); measured ${ms(value)}`,
      });
      continue;
    }
    const base = stable?.[q];
    const relative = base === undefined ? undefined : base * config.latencyFactor + config.latencySlackMs;
    const threshold = relative === undefined ? limit : Math.min(limit, relative);
    const ok = value <= threshold;
    const vsStable =
      base === undefined
        ? ""
        : `, stable ${ms(base)} (limit ${config.latencyFactor}× + ${config.latencySlackMs}ms)`;
    checks.push({
      name,
      status: ok ? "pass" : "fail",
      value,
      threshold,
      message: `canary ${q} ${ms(value)} ${ok ? "≤" : ">"} ${ms(threshold)}${vsStable}`,
    });
  }

  const canaryMix = shares(canary.classCounts);
  const stableMix = stable ? shares(stable.classCounts) : {};
  const enoughCanary = canary.predictions >= config.minPredictions;
  const enoughStable = stable !== undefined && stable.predictions >= config.minPredictions;
  if (!stable) {
    checks.push({
      name: "class-mix",
      status: "pass",
      value: null,
      threshold: null,
      message: "no stable version to compare predictions with",
    });
  } else if (!enoughCanary || !enoughStable) {
    checks.push(
      noData(
        "class-mix",
        `too few predictions to compare class mix (canary ${canary.predictions}, stable ${stable.predictions}; need ${config.minPredictions} each)`,
        config.maxClassShift,
      ),
    );
  } else {
    // Sampling noise on n predictions moves shares by ~1/sqrt(n); allow for it so small steps don't flap.
    const tv = totalVariation(canaryMix, stableMix);
    const threshold = config.maxClassShift + 1 / Math.sqrt(canary.predictions);
    const ok = tv <= threshold;
    checks.push({
      name: "class-mix",
      status: ok ? "pass" : "fail",
      value: tv,
      threshold,
      message: `class mix shift ${tv.toFixed(3)} ${ok ? "≤" : ">"} ${threshold.toFixed(3)}: canary ${mixText(canaryMix)} vs stable ${mixText(stableMix)}`,
    });
  }

  if (
    stable &&
    enoughCanary &&
    enoughStable &&
    canary.confidenceBins.length &&
    stable.confidenceBins.length
  ) {
    // Expected PSI between two samples of the same distribution is ≈ (bins − 1) / n.
    const value = psi(stable.confidenceBins, canary.confidenceBins);
    const threshold = config.maxPsi + (canary.confidenceBins.length - 1) / canary.predictions;
    const ok = value <= threshold;
    checks.push({
      name: "confidence-psi",
      status: ok ? "pass" : "fail",
      value,
      threshold,
      message: `confidence distribution PSI ${value.toFixed(3)} ${ok ? "≤" : ">"} ${threshold.toFixed(3)} (canary vs stable)`,
    });
  } else if (stable) {
    checks.push(
      noData(
        "confidence-psi",
        `too few predictions for the confidence histogram (canary ${canary.predictions}, need ${config.minPredictions})`,
        config.maxPsi,
      ),
    );
  }

  if (options.reference && config.maxReferenceShift !== undefined) {
    if (!enoughCanary) {
      checks.push(noData("reference-mix", "too few canary predictions to compare with the reference", null));
    } else {
      const tv = totalVariation(canaryMix, options.reference.classMix);
      const threshold = config.maxReferenceShift + 1 / Math.sqrt(canary.predictions);
      const ok = tv <= threshold;
      checks.push({
        name: "reference-mix",
        status: ok ? "pass" : "fail",
        value: tv,
        threshold,
        message: `class mix vs the bundle's test split ${tv.toFixed(3)} ${ok ? "≤" : ">"} ${threshold.toFixed(3)}: ${mixText(canaryMix)} vs ${mixText(options.reference.classMix)}`,
      });
    }
  }

  const verdict: CheckStatus = checks.some((c) => c.status === "fail")
    ? "fail"
    : checks.some((c) => c.status === "inconclusive")
      ? "inconclusive"
      : "pass";
  const figures: IntervalFigures = {
    seconds: Math.max(0, (end.at - start.at) / 1000),
    canaryRequests: canary.responses,
    canaryErrors: canary.errors,
    stableRequests: stable?.responses ?? 0,
    stableErrors: stable?.errors ?? 0,
    canaryP95Ms: canary.p95,
    canaryP99Ms: canary.p99,
    stableP95Ms: stable?.p95,
    stableP99Ms: stable?.p99,
    canaryClassMix: canaryMix,
    stableClassMix: stableMix,
    canaryPredictions: canary.predictions,
    stablePredictions: stable?.predictions ?? 0,
  };
  const parts = [
    `${canary.responses} canary requests`,
    `${canary.errors} errors`,
    canary.p95 !== undefined ? `p95 ${ms(canary.p95)}` : undefined,
    canary.predictions > 0 ? mixText(canaryMix) : undefined,
  ].filter(Boolean);
  return { verdict, checks, figures, summary: parts.join(", ") };
}

/** The failing (or, if none fail, inconclusive) checks as one readable sentence. */
export function explain(result: AnalysisResult): string {
  const bad = result.checks.filter((c) => c.status === "fail");
  const list = bad.length ? bad : result.checks.filter((c) => c.status === "inconclusive");
  return list.map((c) => `${c.name}: ${c.message}`).join("; ");
}
