import type { Worker } from "node:cluster";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { Gauge, Registry } from "prom-client";
import type { LoadedBundle } from "../src/bundle/read.js";
import type { ModelCard } from "../src/contracts/card.js";
import { type CountsLayout, type DriftCounts, layoutOf } from "../src/drift/counts.js";
import { hashText, type PredictionLogRecord, RotatingLog } from "../src/drift/log.js";
import { type DriftSettings, driftSettingsFromEnv } from "../src/drift/settings.js";
import { DRIFT_GAUGE, type DriftReport, evaluateDrift, STATISTICS } from "../src/drift/stats.js";
import { readTextProfile, type TextProfile } from "../src/drift/vocabulary.js";
import { ChunkCounter, SlidingWindow } from "../src/drift/window.js";
import { HttpError } from "./errors.js";
import { isMessage } from "./ipc.js";
import type { ModelInput, ServedPrediction } from "./model.js";

/**
 * Online drift (README "Drift"). Workers count predictions into small chunks and hand them to the
 * primary over the cluster IPC channel; the primary keeps the one sliding window over all workers,
 * answers `GET /drift` (asked by whichever worker got the request) and adds the drift gauges to
 * `/metrics`. Sampled prediction-log records ride along with the chunks; the primary writes the log.
 */

type ChunkMessage = { type: "modelship:drift-chunk"; counts: DriftCounts; log: PredictionLogRecord[] };
type ReportRequest = { type: "modelship:drift-req"; id: number };
type ReportResponse = { type: "modelship:drift-res"; id: number; report?: DriftReport; error?: string };

/**
 * A full chunk is sent at most this often per worker; one that fills sooner keeps counting and goes
 * out when the interval is up. Each message wakes the primary, which under heavy load costs more
 * than the counting itself (≈ 5 µs of CPU per request at 15,000 requests/s per worker with 50-prediction
 * chunks, bench:serve); at that rate a chunk then holds ≈ 150 predictions.
 */
export const MIN_CHUNK_INTERVAL_MS = 10;

/** Worker side: counts what PredictionBook sees. */
export class DriftRecorder {
  readonly settings: DriftSettings;
  private readonly counter: ChunkCounter;
  private readonly text: TextProfile | undefined;
  private readonly card: ModelCard;
  private log: PredictionLogRecord[] = [];
  private readonly send: (msg: ChunkMessage | ReportRequest) => void;
  private nextId = 0;
  private readonly pending = new Map<number, (r: ReportResponse) => void>();
  private lastSent = 0;
  private held: NodeJS.Timeout | undefined;

  private constructor(
    card: ModelCard,
    settings: DriftSettings,
    text: TextProfile | undefined,
    send: (msg: ChunkMessage | ReportRequest) => void,
  ) {
    this.card = card;
    this.settings = settings;
    this.text = text;
    this.counter = new ChunkCounter(layoutOf(card.reference, card.io.labels), text, settings.oovEvery);
    this.send = send;
    if (settings.enabled) {
      const timer = setInterval(
        () => {
          if (this.counter.size > 0 && Date.now() - this.counter.startedAt >= settings.flushMs) this.flush();
        },
        Math.max(10, Math.floor(settings.flushMs / 2)),
      );
      timer.unref();
      process.on("message", (msg: unknown) => {
        if (!isMessage<ReportResponse>(msg) || msg.type !== "modelship:drift-res") return;
        this.pending.get(msg.id)?.(msg);
        this.pending.delete(msg.id);
      });
    }
  }

  static async open(
    bundle: LoadedBundle,
    send: (msg: unknown) => void = (m) => process.send?.(m),
  ): Promise<DriftRecorder> {
    const settings = driftSettingsFromEnv();
    const text =
      settings.enabled && bundle.card.io.task === "text-classification"
        ? await readTextProfile(bundle.modelPath)
        : undefined;
    return new DriftRecorder(bundle.card, settings, text, send);
  }

  record(inputs: readonly ModelInput[], predictions: readonly ServedPrediction[]): void {
    if (!this.settings.enabled) return;
    const logging = this.settings.log.file !== undefined && this.settings.log.sample > 0;
    for (let i = 0; i < predictions.length; i++) {
      const p = predictions[i]!;
      const input = inputs[i]!;
      this.counter.add({ input, classIndex: p.labelIndex, confidence: p.confidence });
      if (logging && Math.random() < this.settings.log.sample) this.log.push(this.logRecord(input, p));
    }
    if (this.counter.size >= this.settings.chunk) this.flushSoon();
  }

  /** Sends a full chunk now, or when MIN_CHUNK_INTERVAL_MS since the last one is up. */
  private flushSoon(): void {
    const wait = this.lastSent + MIN_CHUNK_INTERVAL_MS - Date.now();
    if (wait <= 0) this.flush();
    else if (!this.held) {
      this.held = setTimeout(() => this.flush(), wait);
      this.held.unref();
    }
  }

  /** Sends the current chunk (and pending log records) to the primary. */
  flush(): void {
    if (this.held) clearTimeout(this.held);
    this.held = undefined;
    if (this.counter.size === 0 && this.log.length === 0) return;
    this.lastSent = Date.now();
    const log = this.log;
    this.log = [];
    this.send({ type: "modelship:drift-chunk", counts: this.counter.take(), log });
  }

  /** The cluster-wide report, from the primary. */
  report(timeoutMs = 5000): Promise<DriftReport> {
    this.flush();
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HttpError(503, "drift: the primary did not answer in time"));
      }, timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        if (r.report) resolve(r.report);
        else reject(new HttpError(503, `drift unavailable: ${r.error ?? "no report"}`));
      });
      this.send({ type: "modelship:drift-req", id });
    });
  }

  private logRecord(input: ModelInput, p: ServedPrediction): PredictionLogRecord {
    const record: PredictionLogRecord = {
      t: new Date().toISOString(),
      version: this.card.version,
      label: p.label,
      confidence: p.confidence,
      probabilities: Array.from(p.probabilities),
    };
    if (typeof input === "string") {
      record.length = [...input].length;
      if (this.text) {
        const t = this.text.count(input);
        record.tokens = t.tokens;
        record.oov = t.oov;
      }
      if (this.settings.log.hashText) record.sha256 = hashText(input);
      else record.text = input;
    } else {
      record.features = [...input];
    }
    return record;
  }
}

/** `GET /drift`: the cluster-wide window and each statistic with its threshold. */
export function registerDriftRoute(app: FastifyInstance, drift: DriftRecorder): void {
  app.get("/drift", async () => {
    if (!drift.settings.enabled) throw new HttpError(404, "drift monitoring is off (MODELSHIP_DRIFT=false)");
    return drift.report();
  });
}

/** Primary side: the sliding window over all workers, the gauges and the prediction log. */
export class DriftHub {
  private readonly settings: DriftSettings;
  private readonly card: ModelCard;
  private readonly window: SlidingWindow;
  private readonly registry = new Registry();
  private readonly log: RotatingLog | undefined;
  private readonly logger: Logger;

  constructor(card: ModelCard, logger: Logger, settings: DriftSettings = driftSettingsFromEnv()) {
    this.card = card;
    this.settings = settings;
    this.logger = logger;
    const layout: CountsLayout = layoutOf(card.reference, card.io.labels);
    this.window = new SlidingWindow(settings.window, layout);
    this.log = settings.log.file ? new RotatingLog({ ...settings.log, file: settings.log.file }) : undefined;
    if (settings.enabled) this.registerGauges();
  }

  report(): DriftReport {
    return evaluateDrift({
      counts: this.window.counts,
      reference: this.card.reference,
      labels: this.card.io.labels,
      model: { name: this.card.name, version: this.card.version },
      thresholds: this.settings.thresholds,
      windowSize: this.settings.window,
      oldestAt: this.window.oldestAt,
      newestAt: this.window.newestAt,
    });
  }

  /** Handles drift messages from a worker; false for anything else. */
  handle(worker: Worker, msg: unknown): boolean {
    if (!isMessage<ChunkMessage | ReportRequest>(msg)) return false;
    if (msg.type === "modelship:drift-chunk") {
      this.window.push(msg.counts);
      if (this.log && msg.log.length > 0) {
        try {
          this.log.append(msg.log);
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, "prediction log: write failed");
        }
      }
      return true;
    }
    if (msg.type === "modelship:drift-req") {
      let res: ReportResponse;
      try {
        res = { type: "modelship:drift-res", id: msg.id, report: this.report() };
      } catch (err) {
        res = { type: "modelship:drift-res", id: msg.id, error: (err as Error).message };
      }
      if (worker.isConnected()) worker.send(res);
      return true;
    }
    return false;
  }

  /** Cluster metrics text with the drift gauges appended. */
  async appendMetrics(cluster: Promise<string>): Promise<string> {
    const text = await cluster;
    if (!this.settings.enabled) return text;
    const own = await this.registry.metrics();
    return `${text.endsWith("\n") ? text : `${text}\n`}${own}`;
  }

  private registerGauges(): void {
    const thresholds = this.settings.thresholds;
    const thresholdOf = {
      score_psi: thresholds.scorePsi,
      class_mix_distance: thresholds.classMixDistance,
      input_length_psi: thresholds.inputLengthPsi,
      oov_rate: thresholds.oovRate,
    };
    let current: DriftReport | undefined;
    // One evaluation per scrape, shared by all gauges (the first collect computes it).
    const reportForScrape = () => {
      current ??= this.report();
      queueMicrotask(() => {
        current = undefined;
      });
      return current;
    };
    for (const name of STATISTICS) {
      new Gauge({
        name: DRIFT_GAUGE[name],
        help: `Drift statistic ${name} over the last window of predictions (NaN until the window is full)`,
        registers: [this.registry],
        collect() {
          const r = reportForScrape();
          const s = r.statistics.find((x) => x.name === name);
          this.set(r.full && s?.value != null ? s.value : Number.NaN);
        },
      });
      new Gauge({
        name: `${DRIFT_GAUGE[name]}_threshold`,
        help: `Threshold above which ${name} counts as drift`,
        registers: [this.registry],
      }).set(thresholdOf[name]);
    }
    const features = this.card.reference.features;
    if (features) {
      // Tabular models: one series per input feature, so an alert can name the feature that moved.
      new Gauge({
        name: "modelship_drift_feature_psi",
        help: "PSI of each input feature over the last window versus its reference histogram (NaN until the window is full)",
        labelNames: ["feature"],
        registers: [this.registry],
        collect() {
          const r = reportForScrape();
          for (const f of r.features ?? [])
            this.set({ feature: f.name }, r.full && f.psi !== null ? f.psi : Number.NaN);
        },
      });
      new Gauge({
        name: "modelship_drift_feature_psi_threshold",
        help: "Threshold above which a feature's PSI counts as drift",
        registers: [this.registry],
      }).set(thresholds.featurePsi);
    }
    new Gauge({
      name: "modelship_drift_window_predictions",
      help: "Predictions in the drift window (its target size is modelship_drift_window_size)",
      registers: [this.registry],
      collect() {
        this.set(reportForScrape().observed);
      },
    });
    new Gauge({
      name: "modelship_drift_window_size",
      help: "Target size of the drift window in predictions",
      registers: [this.registry],
    }).set(this.settings.window);
  }
}
