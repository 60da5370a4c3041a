/**
 * The model server's Prometheus series: a contract between serving/ (which exports them), the canary
 * analysis (which parses them), the monitoring rules and the docs. Defined here once; imports nothing.
 */
export const METRIC = {
  requests: "modelship_http_requests_total",
  duration: "modelship_http_request_duration_seconds",
  inFlight: "modelship_http_requests_in_flight",
  predictions: "modelship_predictions_total",
  confidence: "modelship_prediction_confidence",
  modelInfo: "modelship_model_info",
  ready: "modelship_worker_ready",
  workerRss: "modelship_worker_resident_memory_bytes",
  chaosErrors: "modelship_chaos_errors_total",
  modelRuns: "modelship_model_runs_total",
  coalescedRequests: "modelship_model_coalesced_requests_total",
} as const;

/** Label names on those series that readers select by. */
export const METRIC_LABEL = {
  status: "status",
  route: "route",
  class: "class",
} as const;
