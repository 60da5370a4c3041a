import { z } from "zod";
import type { Reference } from "../contracts/card.js";
import { METRIC, METRIC_LABEL } from "../contracts/metrics.js";
import { labelTotalVariation, psi } from "../stats/distribution.js";
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

/** The model server's series this analysis reads (names from the one contract, src/contracts/metrics.ts). */
export const serverMetrics = {
  requests: METRIC.requests,
  statusLabel: METRIC_LABEL.status,
  routeLabel: METRIC_LABEL.route,
  latency: METRIC.duration,
  predictions: METRIC.predictions,
  classLabel: METRIC_LABEL.class,
  confidence: METRIC.confidence,
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

/** Total-variation distance between two class mixes (label → share): half the L1 distance. */
export const totalVariation = labelTotalVariation;
export { psi };

function mixText(mix: Record<string, number>): string {
  const entries = Object.entries(mix).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([k, v]) => `${k} ${pct(v, 0)}`).join(" / ") : "none";
}

/** What every check sees: both servers' deltas over the interval, the config and the options. */
interface CheckContext {
  canary: ServerDelta;
  stable: ServerDelta | undefined;
  canaryMix: Record<string, number>;
  stableMix: Record<string, number>;
  enoughCanary: boolean;
  enoughStable: boolean;
  config: AnalysisConfig;
  reference: Reference | undefined;
  end: Scrape;
  /** A check that lacks data: inconclusive, or a pass when --allow-no-data. */
  noData(name: string, message: string, threshold: number | null): CheckResult;
}

/** One check: its results for the interval (none when it does not apply). */
type Check = (c: CheckContext) => CheckResult[];

const judged = (
  name: string,
  ok: boolean,
  value: number,
  threshold: number,
  message: string,
): CheckResult => ({
  name,
  status: ok ? "pass" : "fail",
  value,
  threshold,
  message,
});

const healthy: Check = ({ canary, end }) => [
  {
    name: "healthy",
    status: canary.healthy ? "pass" : "fail",
    value: canary.healthy ? 1 : 0,
    threshold: 1,
    message: canary.healthy
      ? `canary is up (HAProxy: ${canary.statusText}) and serving metrics`
      : `canary is not healthy (HAProxy: ${canary.statusText}${end.canary.metrics === null ? ", /metrics unreachable" : ""})`,
  },
];

/** Errors are judged even on little traffic: a burst of 5xx is evidence enough. */
const errorRate: Check = ({ canary, config, noData }) => {
  const rate = canary.responses > 0 ? canary.errors / canary.responses : 0;
  if (canary.responses < config.minRequests && canary.errors === 0)
    return [
      noData(
        "error-rate",
        `only ${canary.responses} canary responses (need ${config.minRequests}) to judge the error rate`,
        config.maxErrorRate,
      ),
    ];
  const ok = rate <= config.maxErrorRate;
  return [
    judged(
      "error-rate",
      ok,
      rate,
      config.maxErrorRate,
      `canary 5xx/error rate ${pct(rate, 2)} (${canary.errors}/${canary.responses}) ${ok ? "≤" : ">"} ${pct(config.maxErrorRate, 2)}`,
    ),
  ];
};

/** Latency quantile `q`: absolute limit, and relative to stable (factor + slack) when there is one. */
const latency =
  (q: "p95" | "p99"): Check =>
  ({ canary, stable, config, noData }) => {
    const name = `latency-${q}`;
    const limit = q === "p95" ? config.maxP95Ms : config.maxP99Ms;
    const value = canary[q];
    if (value === undefined || canary.responses < config.minRequests)
      return [noData(name, `not enough canary requests to measure ${q} latency`, limit)];
    const needed = config.minLatencySamples[q];
    if (canary.latencySamples < needed)
      // Too few samples for this quantile to mean anything: say so, and let the other checks decide.
      return [
        {
          name,
          status: "pass",
          value,
          threshold: null,
          message: `${q} not judged yet: ${canary.latencySamples} canary requests (needs ${needed}); measured ${ms(value)}`,
        },
      ];
    const base = stable?.[q];
    const relative = base === undefined ? undefined : base * config.latencyFactor + config.latencySlackMs;
    const threshold = relative === undefined ? limit : Math.min(limit, relative);
    const ok = value <= threshold;
    const vsStable =
      base === undefined
        ? ""
        : `, stable ${ms(base)} (limit ${config.latencyFactor}× + ${config.latencySlackMs}ms)`;
    return [
      judged(
        name,
        ok,
        value,
        threshold,
        `canary ${q} ${ms(value)} ${ok ? "≤" : ">"} ${ms(threshold)}${vsStable}`,
      ),
    ];
  };

/** Canary vs stable class mix (total variation), with ~1/sqrt(n) allowed for sampling noise. */
const classMix: Check = ({
  canary,
  stable,
  canaryMix,
  stableMix,
  enoughCanary,
  enoughStable,
  config,
  noData,
}) => {
  if (!stable)
    return [
      {
        name: "class-mix",
        status: "pass",
        value: null,
        threshold: null,
        message: "no stable version to compare predictions with",
      },
    ];
  if (!enoughCanary || !enoughStable)
    return [
      noData(
        "class-mix",
        `too few predictions to compare class mix (canary ${canary.predictions}, stable ${stable.predictions}; need ${config.minPredictions} each)`,
        config.maxClassShift,
      ),
    ];
  const tv = totalVariation(canaryMix, stableMix);
  const threshold = config.maxClassShift + 1 / Math.sqrt(canary.predictions);
  const ok = tv <= threshold;
  return [
    judged(
      "class-mix",
      ok,
      tv,
      threshold,
      `class mix shift ${tv.toFixed(3)} ${ok ? "≤" : ">"} ${threshold.toFixed(3)}: canary ${mixText(canaryMix)} vs stable ${mixText(stableMix)}`,
    ),
  ];
};

/** Canary vs stable confidence histogram (PSI); expected PSI of two samples of one distribution ≈ (bins − 1) / n. */
const confidencePsi: Check = ({ canary, stable, enoughCanary, enoughStable, config, noData }) => {
  if (!stable) return [];
  if (!enoughCanary || !enoughStable || !canary.confidenceBins.length || !stable.confidenceBins.length)
    return [
      noData(
        "confidence-psi",
        `too few predictions for the confidence histogram (canary ${canary.predictions}, need ${config.minPredictions})`,
        config.maxPsi,
      ),
    ];
  const value = psi(canary.confidenceBins, stable.confidenceBins);
  const threshold = config.maxPsi + (canary.confidenceBins.length - 1) / canary.predictions;
  const ok = value <= threshold;
  return [
    judged(
      "confidence-psi",
      ok,
      value,
      threshold,
      `confidence distribution PSI ${value.toFixed(3)} ${ok ? "≤" : ">"} ${threshold.toFixed(3)} (canary vs stable)`,
    ),
  ];
};

/** Canary class mix vs the bundle's test split, when configured. */
const referenceMix: Check = ({ canary, canaryMix, enoughCanary, config, reference, noData }) => {
  if (!reference || config.maxReferenceShift === undefined) return [];
  if (!enoughCanary)
    return [noData("reference-mix", "too few canary predictions to compare with the reference", null)];
  const tv = totalVariation(canaryMix, reference.classMix);
  const threshold = config.maxReferenceShift + 1 / Math.sqrt(canary.predictions);
  const ok = tv <= threshold;
  return [
    judged(
      "reference-mix",
      ok,
      tv,
      threshold,
      `class mix vs the bundle's test split ${tv.toFixed(3)} ${ok ? "≤" : ">"} ${threshold.toFixed(3)}: ${mixText(canaryMix)} vs ${mixText(reference.classMix)}`,
    ),
  ];
};

/** The checks, in the order they are reported. Adding a check = one function and one entry here. */
export const CHECKS: readonly Check[] = [
  healthy,
  errorRate,
  latency("p95"),
  latency("p99"),
  classMix,
  confidencePsi,
  referenceMix,
];

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
  const canaryMix = shares(canary.classCounts);
  const stableMix = stable ? shares(stable.classCounts) : {};
  const context: CheckContext = {
    canary,
    stable,
    canaryMix,
    stableMix,
    enoughCanary: canary.predictions >= config.minPredictions,
    enoughStable: stable !== undefined && stable.predictions >= config.minPredictions,
    config,
    reference: options.reference,
    end,
    noData: (name, message, threshold) => ({
      name,
      status: options.allowNoData ? "pass" : "inconclusive",
      value: null,
      threshold,
      message: options.allowNoData ? `${message} (allowed: --allow-no-data)` : message,
    }),
  };
  const checks = CHECKS.flatMap((check) => check(context));

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
