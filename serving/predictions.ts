import type { DriftRecorder } from "./drift.js";
import type { ServerMetrics } from "./metrics.js";
import type { ModelInput, ServedPrediction } from "./model.js";

/**
 * The one place that sees every served prediction (both /predict and /v2 infer). Class mix and
 * confidence histogram live here; drift statistics (issue 7) hook in at `record` too.
 */
export class PredictionBook {
  private readonly metrics: ServerMetrics;

  private readonly drift: DriftRecorder | undefined;

  constructor(metrics: ServerMetrics, drift?: DriftRecorder) {
    this.metrics = metrics;
    this.drift = drift;
  }

  record(inputs: readonly ModelInput[], predictions: readonly ServedPrediction[]): void {
    this.drift?.record(inputs, predictions);
    const { predictions: byClass, confidence } = this.metrics;
    for (const p of predictions) {
      byClass.inc({ class: p.label });
      confidence.observe(p.confidence);
    }
  }
}
