import cluster from "node:cluster";
import { AggregatorRegistry, Counter, collectDefaultMetrics, Gauge, Histogram, register } from "prom-client";
import type { ModelCard } from "../src/contracts/card.js";
import { METRIC } from "../src/contracts/metrics.js";

// Metric names are a contract (the canary analysis and the monitoring rules parse them): defined once
// in src/contracts/metrics.ts.
export { METRIC } from "../src/contracts/metrics.js";

/** Latency buckets in seconds: fine below 5 ms, where a healthy model server lives. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface ServerMetrics {
  requests: Counter<"route" | "method" | "status">;
  duration: Histogram<"route" | "method">;
  inFlight: Gauge;
  predictions: Counter<"class">;
  confidence: Histogram;
  ready: Gauge;
  chaosErrors: Counter;
}

/**
 * Creates this worker's metrics in prom-client's global registry, which the primary's
 * AggregatorRegistry collects over IPC and sums across workers.
 */
export function createServerMetrics(
  card: ModelCard,
  runStats: () => { runs: number; coalescedRequests: number } = () => ({ runs: 0, coalescedRequests: 0 }),
): ServerMetrics {
  register.clear();
  // Constructing one installs prom-client's worker-side IPC listener that answers the primary.
  new AggregatorRegistry();
  collectDefaultMetrics();
  const workerId = cluster.isWorker ? String(cluster.worker?.id ?? 0) : "0";
  const requests = new Counter({
    name: METRIC.requests,
    help: "HTTP requests by route template, method and status code",
    labelNames: ["route", "method", "status"] as const,
  });
  const duration = new Histogram({
    name: METRIC.duration,
    help: "HTTP request latency in seconds (server side, receive to send)",
    labelNames: ["route", "method"] as const,
    buckets: LATENCY_BUCKETS,
  });
  const inFlight = new Gauge({ name: METRIC.inFlight, help: "HTTP requests being served now" });
  const predictions = new Counter({
    name: METRIC.predictions,
    help: "Predictions served, by predicted class",
    labelNames: ["class"] as const,
  });
  for (const label of card.io.labels) predictions.inc({ class: label }, 0);
  // Same bins as the bundle's reference.scoreHistogram, so PSI can be computed from counter deltas.
  const confidence = new Histogram({
    name: METRIC.confidence,
    help: "Confidence (probability of the predicted class) of served predictions",
    buckets: card.reference.scoreHistogram.edges.slice(1),
  });
  const info = new Gauge({
    name: METRIC.modelInfo,
    help: "The model this server serves (always 1)",
    labelNames: ["name", "version", "sha256"] as const,
    aggregator: "first",
  });
  info.set({ name: card.name, version: card.version, sha256: card.model.sha256 }, 1);
  const ready = new Gauge({
    name: METRIC.ready,
    help: "Workers that are warmed up and not draining",
  });
  new Gauge({
    name: METRIC.workerRss,
    help: "Resident memory of each worker process in bytes",
    labelNames: ["worker"] as const,
    collect() {
      this.set({ worker: workerId }, process.memoryUsage.rss());
    },
  });
  // Read from the model at scrape time: nothing is added to the request path.
  new Counter({
    name: METRIC.modelRuns,
    help: "onnxruntime runs; fewer than predict requests when requests arriving together share a run",
    collect() {
      this.reset();
      this.inc(runStats().runs);
    },
  });
  new Counter({
    name: METRIC.coalescedRequests,
    help: "Requests whose rows were run together with another request's (MODELSHIP_COALESCE_ROWS)",
    collect() {
      this.reset();
      this.inc(runStats().coalescedRequests);
    },
  });
  const chaosErrors = new Counter({
    name: METRIC.chaosErrors,
    help: "Requests failed on purpose by MODELSHIP_CHAOS_ERROR_RATE (testing switch)",
  });
  return { requests, duration, inFlight, predictions, confidence, ready, chaosErrors };
}
