import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriftRecorder, MIN_CHUNK_INTERVAL_MS } from "../serving/drift.js";
import { readBundle } from "../src/bundle/read.js";
import { DEFAULT_THRESHOLDS, DEFAULT_WINDOW, thresholdsSchema } from "../src/contracts/drift.js";
import { layoutOf } from "../src/drift/counts.js";
import { predictionLogRecordSchema, RotatingLog } from "../src/drift/log.js";
import { driftSettingsFromEnv } from "../src/drift/settings.js";
import { type DriftReport, driftReportSchema, evaluateDrift } from "../src/drift/stats.js";
import { readTextProfile, type TextProfile } from "../src/drift/vocabulary.js";
import { ChunkCounter, type Observation, SlidingWindow } from "../src/drift/window.js";
import { psi } from "../src/stats/distribution.js";
import { trainedBundle } from "./support/bundle.js";
import { predictionStreams, rng, type Streams } from "./support/drift-streams.js";
import { request, startServer } from "./support/serving.js";

const thresholds = thresholdsSchema.parse({});

let bundle: string;
let streams: Streams;
let text: TextProfile | undefined;

beforeAll(async () => {
  bundle = await trainedBundle();
  streams = await predictionStreams(bundle);
  text = await readTextProfile(streams.modelPath);
}, 600_000);

/** Feeds `count` predictions drawn (with replacement) from `pool` into the window in server-size chunks. */
function feed(window: SlidingWindow, pool: readonly Observation[], count: number, next: () => number): void {
  // As the server counts: its default OOV sampling included.
  const counter = new ChunkCounter(
    layoutOf(streams.card.reference, streams.card.io.labels),
    text,
    driftSettingsFromEnv({}).oovEvery,
  );
  for (let i = 0; i < count; i++) {
    counter.add(pool[Math.floor(next() * pool.length)]!);
    if (counter.size >= 50) window.push(counter.take());
  }
  if (counter.size > 0) window.push(counter.take());
}

function report(window: SlidingWindow): DriftReport {
  return evaluateDrift({
    counts: window.counts,
    reference: streams.card.reference,
    labels: streams.card.io.labels,
    model: { name: streams.card.name, version: streams.card.version },
    thresholds,
    windowSize: window.size,
  });
}

/** Predictions after the start of a shift until the window reports drift (in windows), or Infinity. */
function windowsToDetection(shifted: readonly Observation[], seed: number): number {
  const next = rng(seed);
  const window = new SlidingWindow(DEFAULT_WINDOW, layoutOf(streams.card.reference, streams.card.io.labels));
  feed(window, streams.heldOut, DEFAULT_WINDOW, next);
  expect(report(window).drift).toBe(false);
  for (let sent = 50; sent <= 3 * DEFAULT_WINDOW; sent += 50) {
    feed(window, shifted, 50, next);
    if (report(window).drift) return sent / DEFAULT_WINDOW;
  }
  return Number.POSITIVE_INFINITY;
}

describe("drift statistics on the real model", () => {
  it("rebuilds the held-out split the bundle's reference came from", () => {
    const counts = streams.card.io.labels.map(() => 0);
    for (const o of streams.heldOut) counts[o.classIndex]!++;
    streams.card.io.labels.forEach((l, i) => {
      expect(counts[i]! / streams.heldOut.length).toBeCloseTo(streams.card.reference.classMix[l]!, 6);
    });
    expect(text?.vocabulary.size).toBeGreaterThan(1000);
  });

  it("in-distribution traffic: at most 1 false alarm in 100 windows with the defaults", () => {
    const windows = 400;
    const next = rng(7);
    let alarms = 0;
    const worst: Record<string, number> = {};
    for (let w = 0; w < windows; w++) {
      const window = new SlidingWindow(
        DEFAULT_WINDOW,
        layoutOf(streams.card.reference, streams.card.io.labels),
      );
      feed(window, streams.heldOut, DEFAULT_WINDOW, next);
      const r = report(window);
      expect(r.full).toBe(true);
      if (r.drift) alarms++;
      for (const s of r.statistics) worst[s.name] = Math.max(worst[s.name] ?? 0, s.value ?? 0);
    }
    console.log(`in-distribution: ${alarms} alarms in ${windows} windows; worst ${JSON.stringify(worst)}`);
    expect(alarms / windows).toBeLessThanOrEqual(1 / 100);
  });

  it("detects shifted traffic within one window of it", () => {
    const delta = streams.heldOut.filter((_, i) => streams.heldOutAirline[i] === "Delta");
    const found = {
      neutralOnly: windowsToDetection(streams.neutral, 11),
      nonAirline: windowsToDetection(streams.nonAirline, 12),
      deltaOnly: windowsToDetection(delta, 13),
    };
    console.log(`windows of shifted traffic until drift is reported: ${JSON.stringify(found)}`);
    for (const w of Object.values(found)) expect(w).toBeLessThanOrEqual(1);
  });

  it("names the statistic that moved", () => {
    const next = rng(3);
    const layout = layoutOf(streams.card.reference, streams.card.io.labels);
    const nonAirline = new SlidingWindow(DEFAULT_WINDOW, layout);
    feed(nonAirline, streams.nonAirline, DEFAULT_WINDOW, next);
    const over = report(nonAirline)
      .statistics.filter((s) => s.over)
      .map((s) => s.name);
    expect(over).toContain("oov_rate");
    expect(over).toContain("input_length_psi");
    const neutral = new SlidingWindow(DEFAULT_WINDOW, layout);
    feed(neutral, streams.neutral, DEFAULT_WINDOW, next);
    expect(report(neutral).statistics.find((s) => s.name === "score_psi")?.over).toBe(true);
  });
});

describe("drift building blocks", () => {
  it("PSI is zero for identical distributions and grows with the shift", () => {
    expect(psi([10, 20, 30], [10, 20, 30])).toBeCloseTo(0, 12);
    expect(psi([30, 20, 10], [10, 20, 30])).toBeGreaterThan(psi([15, 20, 25], [10, 20, 30]));
  });

  it("the sliding window keeps the newest predictions and bounded chunks", () => {
    const layout = layoutOf(streams.card.reference, streams.card.io.labels);
    const window = new SlidingWindow(100, layout);
    const counter = new ChunkCounter(layout, text);
    for (let i = 0; i < 10_000; i++) {
      counter.add(streams.heldOut[i % streams.heldOut.length]!);
      if (counter.size === 7) window.push(counter.take());
    }
    expect(window.counts.n).toBeGreaterThanOrEqual(100);
    expect(window.counts.n).toBeLessThan(107);
    expect(window.chunkCount).toBe(Math.ceil(window.counts.n / 7));
    expect(window.counts.classes.reduce((a, b) => a + b, 0)).toBe(window.counts.n);
  });

  it("a worker sends a full chunk at most every MIN_CHUNK_INTERVAL_MS; one that fills sooner waits and keeps counting", async () => {
    const sent: { n: number; at: number }[] = [];
    const recorder = await DriftRecorder.open(await readBundle(bundle), (msg) => {
      const m = msg as { type: string; counts?: { n: number } };
      if (m.type === "modelship:drift-chunk") sent.push({ n: m.counts!.n, at: performance.now() });
    });
    const p = streams.heldOut[0]!;
    const prediction = {
      label: streams.card.io.labels[p.classIndex]!,
      labelIndex: p.classIndex,
      probabilities: new Float32Array(streams.card.io.labels.length),
      confidence: p.confidence,
    };
    const record = (k: number) =>
      recorder.record(
        Array.from({ length: k }, () => p.input as string),
        Array.from({ length: k }, () => prediction),
      );
    const t0 = performance.now();
    record(50); // the first full chunk goes at once
    expect(sent.map((m) => m.n)).toEqual([50]);
    for (let i = 0; i < 4; i++) record(50); // 200 more inside the interval: held, still counted
    expect(sent).toHaveLength(1);
    await new Promise((r) => setTimeout(r, MIN_CHUNK_INTERVAL_MS + 30));
    expect(sent.map((m) => m.n)).toEqual([50, 200]);
    expect(sent[1]!.at - t0).toBeGreaterThanOrEqual(MIN_CHUNK_INTERVAL_MS - 1);
    record(10); // a partial chunk waits for flushMs or a report, as before
    expect(sent).toHaveLength(2);
    recorder.flush();
    expect(sent.map((m) => m.n)).toEqual([50, 200, 10]);
  });

  it("settings come from env with one clear error for a bad value", () => {
    expect(driftSettingsFromEnv({}).thresholds).toEqual({ ...DEFAULT_THRESHOLDS });
    const s = driftSettingsFromEnv({ MODELSHIP_DRIFT_WINDOW: "200", MODELSHIP_DRIFT_SCORE_PSI: "0.2" });
    expect(s.window).toBe(200);
    expect(s.thresholds.scorePsi).toBe(0.2);
    expect(() => driftSettingsFromEnv({ MODELSHIP_DRIFT_WINDOW: "lots" })).toThrow(
      /invalid drift setting MODELSHIP_DRIFT_WINDOW/,
    );
  });

  it("the prediction log rotates and stays bounded", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mstest-drift-log-"));
    try {
      const file = join(dir, "predictions.jsonl");
      const log = new RotatingLog({ file, maxBytes: 2048, files: 3 });
      for (let i = 0; i < 200; i++) {
        log.append([
          {
            t: new Date().toISOString(),
            version: "v",
            label: "x",
            confidence: 0.5,
            probabilities: [0.5, 0.5],
            text: `row ${i}`,
          },
        ]);
      }
      const files = readdirSync(dir).sort();
      expect(files).toEqual(["predictions.jsonl", "predictions.jsonl.1", "predictions.jsonl.2"]);
      for (const f of files) expect(readFileSync(join(dir, f)).length).toBeLessThanOrEqual(2048);
      expect(readFileSync(file, "utf8")).toContain('"row 199"');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("drift in the real server (2 workers)", () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("GET /drift and /metrics aggregate both workers; neutral traffic is flagged; the log hashes texts", async () => {
    dir = await mkdtemp(join(tmpdir(), "mstest-drift-srv-"));
    const logFile = join(dir, "log", "predictions.jsonl");
    const server = await startServer(bundle, {
      MODELSHIP_WORKERS: "2",
      MODELSHIP_ACCESS_LOG: "false",
      MODELSHIP_DRIFT_WINDOW: "400",
      MODELSHIP_DRIFT_FLUSH_MS: "100",
      MODELSHIP_PREDICTION_LOG: logFile,
      MODELSHIP_PREDICTION_LOG_SAMPLE: "0.5",
      MODELSHIP_PREDICTION_LOG_HASH_TEXT: "true",
    });
    try {
      const send = async (texts: readonly string[]) => {
        for (let i = 0; i < texts.length; i += 20) {
          const r = await request(`${server.url}/predict`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ texts: texts.slice(i, i + 20) }),
          });
          expect(r.status).toBe(200);
        }
      };
      const before = driftReportSchema.parse((await request(`${server.url}/drift`)).json());
      expect(before).toMatchObject({ observed: 0, full: false, drift: false, windowSize: 400 });

      await send(streams.heldOutTexts.slice(0, 400));
      await new Promise((r) => setTimeout(r, 300));
      const calm = driftReportSchema.parse((await request(`${server.url}/drift`)).json());
      expect(calm.observed).toBe(400);
      expect(calm.full).toBe(true);
      expect(calm.drift).toBe(false);

      await send(streams.neutralTexts.slice(0, 400));
      await new Promise((r) => setTimeout(r, 300));
      const shifted = driftReportSchema.parse((await request(`${server.url}/drift`)).json());
      expect(shifted.drift).toBe(true);
      expect(shifted.statistics.find((s) => s.name === "score_psi")?.over).toBe(true);

      const metrics = (await request(`${server.url}/metrics`)).text;
      const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
      expect(gauge("modelship_drift_score_psi")).toBeCloseTo(shifted.statistics[0]!.value!, 3);
      expect(gauge("modelship_drift_score_psi_threshold")).toBe(DEFAULT_THRESHOLDS.scorePsi);
      expect(gauge("modelship_drift_window_size")).toBe(400);
      // The cluster hands fresh connections to workers round-robin: both fed the one window.
      expect(gauge("modelship_drift_window_predictions")).toBeGreaterThanOrEqual(400);

      expect(existsSync(logFile)).toBe(true);
      const lines = readFileSync(logFile, "utf8").trim().split("\n");
      expect(lines.length).toBeGreaterThan(200);
      expect(lines.length).toBeLessThan(600);
      for (const line of lines.slice(0, 20)) {
        const rec = predictionLogRecordSchema.parse(JSON.parse(line));
        expect(rec.text).toBeUndefined();
        expect(rec.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(rec.tokens).toBeGreaterThan(0);
      }
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 120_000);
});
