import type { Logger } from "pino";
import type { ServerMetrics } from "./metrics.js";
import type { ServedModel } from "./model.js";
import type { PredictionBook } from "./predictions.js";
import type { ServeSettings } from "./settings.js";

/** Readiness of this worker: warmed up and listening, and not yet told to drain. */
export interface WorkerState {
  ready: boolean;
  draining: boolean;
}

/** What every route module receives. */
export interface ServerContext {
  model: ServedModel;
  settings: ServeSettings;
  metrics: ServerMetrics;
  book: PredictionBook;
  state: WorkerState;
  logger: Logger;
  /** Prometheus text for all workers (the primary aggregates over IPC). */
  clusterMetrics: () => Promise<{ contentType: string; text: string }>;
}
