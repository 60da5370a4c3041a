import { stat } from "node:fs/promises";
import type { RuntimeFigures } from "../contracts/card.js";
import { ClassifierSession, type OpenOptions, ORT_VERSION } from "./session.js";

export type ModelInput = string | readonly number[];

export interface MeasureOptions extends OpenOptions {
  /** Fresh loads timed; the median is reported. */
  loads?: number;
  /** Timed single-row runs (after warm-up) for p50/p95. */
  singleRuns?: number;
  /** Minimum wall time spent on batch-64 throughput. */
  batchMs?: number;
}

/**
 * Runtime figures as the production checklist asks for them, measured with onnxruntime-node on this
 * host: file size, load time, single-row p50/p95 latency, rows/s at batch 64.
 */
export async function measureRuntime(
  modelPath: string,
  samples: readonly ModelInput[],
  opts: MeasureOptions = {},
): Promise<RuntimeFigures> {
  if (samples.length === 0) throw new RangeError("measureRuntime needs sample inputs");
  const { size } = await stat(modelPath);
  const loads: number[] = [];
  let session: ClassifierSession | undefined;
  for (let i = 0; i < (opts.loads ?? 3); i++) {
    const s = await ClassifierSession.open(modelPath, opts);
    loads.push(s.loadMs);
    if (session) await s.release();
    else session = s;
  }
  try {
    const s = session!;
    const batchOf = (start: number, n: number) =>
      Array.from({ length: n }, (_, k) => samples[(start + k) % samples.length]!) as string[] | number[][];
    for (let i = 0; i < 20; i++) await s.predict(batchOf(i, 1));
    const runs = opts.singleRuns ?? 300;
    const single: number[] = [];
    for (let i = 0; i < runs; i++) {
      const batch = batchOf(i, 1);
      const t0 = performance.now();
      await s.predict(batch);
      single.push(performance.now() - t0);
    }
    let rows = 0;
    const deadline = opts.batchMs ?? 1000;
    const t0 = performance.now();
    let elapsed = 0;
    for (let i = 0; elapsed < deadline || i < 5; i++) {
      await s.predict(batchOf(i * 64, 64));
      rows += 64;
      elapsed = performance.now() - t0;
    }
    return {
      onnxruntimeVersion: ORT_VERSION,
      fileSizeBytes: size,
      loadMs: round(quantile(loads, 0.5)),
      singleRowP50Ms: round(quantile(single, 0.5)),
      singleRowP95Ms: round(quantile(single, 0.95)),
      batch64RowsPerSec: Math.round((rows / elapsed) * 1000),
    };
  } finally {
    await session?.release();
  }
}

/** Linear-interpolated quantile (numpy's default method). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
