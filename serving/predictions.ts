import type { Counter } from "prom-client";
import type { DriftRecorder } from "./drift.js";
import type { ServerMetrics } from "./metrics.js";
import type { ModelInput, ServedPrediction } from "./model.js";

/**
 * The one place that sees every served prediction (both /predict and /v2 infer). Class mix and
 * confidence histogram live here; drift statistics (issue 7) hook in at `record` too.
 */
export class PredictionBook {
  private readonly byClass: Map<string, Counter.Internal>;
  private readonly confidence: ServerMetrics["confidence"];
  private readonly drift: DriftRecorder | undefined;

  constructor(metrics: ServerMetrics, labels: readonly string[], drift?: DriftRecorder) {
    this.drift = drift;
    this.byClass = new Map(labels.map((l) => [l, metrics.predictions.labels({ class: l })]));
    this.confidence = metrics.confidence;
  }

  record(inputs: readonly ModelInput[], predictions: readonly ServedPrediction[]): void {
    this.drift?.record(inputs, predictions);
    for (const p of predictions) {
      this.byClass.get(p.label)?.inc();
      this.confidence.observe(p.confidence);
    }
  }
}
