import { z } from "zod";
import type { GoldenExample, ModelCard } from "../contracts/card.js";
import { textTable } from "../util/progress.js";
import { checkFeatureAnswer, featuresBody } from "./features.js";

/**
 * The golden smoke test a built image (and a canary candidate) must pass before it can ship: wait
 * for readiness, replay every golden example of the bundle through `/predict` and the Open
 * Inference Protocol endpoint, compare with the probabilities recorded at training time, and check
 * that `/metrics` and `/model-info` describe this exact model.
 */

export const DEFAULT_TOLERANCE = 1e-4;
/** `/predict` reports confidence in percent rounded to 2 decimals: up to 5e-5 of rounding. */
const PERCENT_ROUNDING = 0.005 / 100;

export interface SmokeOptions {
  baseUrl: string;
  card: ModelCard;
  tolerance?: number;
  readyTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export interface Mismatch {
  example: number;
  route: string;
  input: string;
  field: string;
  expected: string;
  actual: string;
  diff: number | null;
}

export interface SmokeCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SmokeResult {
  passed: boolean;
  examples: number;
  tolerance: number;
  /** Largest |expected − actual| probability seen on the v2 endpoint. */
  maxAbsDiff: number;
  checks: SmokeCheck[];
  mismatches: Mismatch[];
}

/** Polls `/ready` until it answers 2xx; returns how long that took. Throws on timeout. */
export async function waitForReady(
  baseUrl: string,
  options: { timeoutMs?: number; intervalMs?: number; isAlive?: () => Promise<string | null> } = {},
): Promise<number> {
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? 30_000);
  let last = "no answer yet";
  let polls = 0;
  for (;;) {
    try {
      const res = await fetch(new URL("/ready", baseUrl), { signal: AbortSignal.timeout(2000) });
      if (res.ok) return performance.now() - started;
      last = `/ready answered ${res.status}`;
      await res.body?.cancel();
    } catch (err) {
      last =
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    }
    // A container that died will never become ready: say why instead of waiting out the timeout.
    if (options.isAlive && ++polls % 10 === 0) {
      const dead = await options.isAlive();
      if (dead) throw new Error(`server stopped before it was ready: ${dead}`);
    }
    if (performance.now() > deadline)
      throw new Error(`not ready after ${Math.round(performance.now() - started)} ms (${last})`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

const predictItemSchema = z.object({ sentiment: z.string(), confidence: z.number() }).loose();
const predictBatchSchema = z
  .object({ predictions: z.array(predictItemSchema), model_version: z.string() })
  .loose();
const v2OutputSchema = z
  .object({
    name: z.string(),
    shape: z.array(z.number()),
    datatype: z.string(),
    data: z.array(z.unknown()),
  })
  .loose();
const v2ResponseSchema = z.object({ model_name: z.string(), outputs: z.array(v2OutputSchema) }).loose();
const modelInfoSchema = z.object({ name: z.string(), version: z.string(), sha256: z.string() }).loose();

async function call(
  baseUrl: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<{ status: number; json: unknown; text: string }> {
  let status: number;
  let text: string;
  try {
    const res = await fetch(new URL(path, baseUrl), {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.status;
    text = await res.text();
  } catch (err) {
    // A refused or timed-out request is a failed check with a reason, not a crash of the smoke test.
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    return { status: 0, json: undefined, text: `request failed: ${cause}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, json, text };
}

function short(input: GoldenExample["input"], width = 40): string {
  const s = typeof input === "string" ? input : `[${input.join(", ")}]`;
  const flat = s.replace(/\s+/g, " ");
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

function fmt(n: number): string {
  return n.toFixed(6);
}

/** The v2 request for a batch of golden inputs, shaped from the bundle's input signature. */
export function v2Request(card: ModelCard, inputs: GoldenExample["input"][]) {
  const spec = card.io.inputs[0];
  if (!spec) throw new Error("model card has no inputs");
  if (card.io.task === "text-classification") {
    const shape = spec.shape.length >= 2 ? [inputs.length, 1] : [inputs.length];
    return { inputs: [{ name: spec.name, shape, datatype: "BYTES", data: inputs.map(String) }] };
  }
  const rows = inputs.map((i) => (Array.isArray(i) ? i : []));
  const width = rows[0]?.length ?? 0;
  return { inputs: [{ name: spec.name, shape: [rows.length, width], datatype: "FP32", data: rows.flat() }] };
}

/** Row-major [N, C] probabilities from a v2 output whose data may be flat or nested. */
function probabilityRows(output: z.infer<typeof v2OutputSchema>, n: number, c: number): number[][] | null {
  const flat = (output.data as unknown[]).flat(2);
  if (flat.length !== n * c || !flat.every((v) => typeof v === "number")) return null;
  return Array.from({ length: n }, (_, i) => (flat as number[]).slice(i * c, i * c + c));
}

export async function runSmokeTest(options: SmokeOptions): Promise<SmokeResult> {
  const { baseUrl, card } = options;
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const timeout = options.requestTimeoutMs ?? 10_000;
  const golden = card.golden;
  const labels = card.io.labels;
  const checks: SmokeCheck[] = [];
  const mismatches: Mismatch[] = [];
  let maxAbsDiff = 0;
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  // 1. /predict, one request per example (text models only: tabular ones are served by v2).
  if (card.io.task === "text-classification") {
    let bad = 0;
    for (const [i, ex] of golden.entries()) {
      const res = await call(baseUrl, "/predict", { text: ex.input }, timeout);
      const parsed = predictItemSchema.safeParse(res.json);
      if (res.status !== 200 || !parsed.success) {
        bad++;
        mismatches.push({
          example: i,
          route: "/predict",
          input: short(ex.input),
          field: "response",
          expected: "200 {sentiment, confidence}",
          actual: `${res.status} ${res.text.slice(0, 60)}`,
          diff: null,
        });
        continue;
      }
      const expectedConfidence = Math.max(...ex.expected.probabilities);
      const actual = parsed.data.confidence / 100;
      const diff = Math.abs(actual - expectedConfidence);
      if (parsed.data.sentiment !== ex.expected.label) {
        bad++;
        mismatches.push({
          example: i,
          route: "/predict",
          input: short(ex.input),
          field: "sentiment",
          expected: ex.expected.label,
          actual: parsed.data.sentiment,
          diff: null,
        });
      } else if (diff > tolerance + PERCENT_ROUNDING) {
        bad++;
        mismatches.push({
          example: i,
          route: "/predict",
          input: short(ex.input),
          field: "confidence",
          expected: fmt(expectedConfidence),
          actual: fmt(actual),
          diff,
        });
      }
    }
    check("/predict", bad === 0, `${golden.length - bad}/${golden.length} golden examples match`);

    const batch = await call(baseUrl, "/predict", { texts: golden.map((g) => g.input) }, timeout);
    const parsedBatch = predictBatchSchema.safeParse(batch.json);
    const batchOk =
      batch.status === 200 &&
      parsedBatch.success &&
      parsedBatch.data.model_version === card.version &&
      parsedBatch.data.predictions.length === golden.length &&
      parsedBatch.data.predictions.every((p, i) => p.sentiment === golden[i]?.expected.label);
    check(
      "/predict (batch)",
      batchOk,
      batchOk
        ? `${golden.length} texts in one request, labels and model_version match`
        : `status ${batch.status}: ${parsedBatch.success ? "labels or model_version differ" : batch.text.slice(0, 120)}`,
    );
  }

  // 1b. Tabular models with a feature schema: /predict with named features (src/smoke/features.ts).
  if (card.io.task === "tabular-classification" && card.io.featureColumns) {
    const res = await call(baseUrl, "/predict", featuresBody(card), timeout);
    const r = checkFeatureAnswer(card, res.status, res.json, res.text, tolerance);
    maxAbsDiff = Math.max(maxAbsDiff, r.maxAbsDiff);
    for (const m of r.mismatches) {
      mismatches.push({ ...m, route: "/predict", input: short(golden[m.example]!.input) });
    }
    check("/predict (features)", r.ok, r.detail);
  }

  // 2. Open Inference Protocol: all examples in one batch, full probability vectors compared.
  const inferPath = `/v2/models/${encodeURIComponent(card.name)}/infer`;
  const infer = await call(
    baseUrl,
    inferPath,
    v2Request(
      card,
      golden.map((g) => g.input),
    ),
    timeout,
  );
  const parsedInfer = v2ResponseSchema.safeParse(infer.json);
  const output = parsedInfer.success
    ? parsedInfer.data.outputs.find((o) => o.name === card.io.probabilitiesOutput)
    : undefined;
  const rows = output ? probabilityRows(output, golden.length, labels.length) : null;
  if (infer.status !== 200 || !rows) {
    const why = !parsedInfer.success
      ? `${infer.status} ${infer.text.slice(0, 120)}`
      : !output
        ? `no output named ${card.io.probabilitiesOutput}`
        : `output ${card.io.probabilitiesOutput} is not [${golden.length}, ${labels.length}] numbers`;
    check(inferPath, false, why);
  } else {
    let bad = 0;
    for (const [i, ex] of golden.entries()) {
      const row = rows[i] as number[];
      let rowBad = false;
      for (const [j, expected] of ex.expected.probabilities.entries()) {
        const actual = row[j] ?? Number.NaN;
        const diff = Math.abs(actual - expected);
        maxAbsDiff = Math.max(maxAbsDiff, Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff);
        if (!(diff <= tolerance)) {
          rowBad = true;
          mismatches.push({
            example: i,
            route: inferPath,
            input: short(ex.input),
            field: `p(${labels[j] ?? j})`,
            expected: fmt(expected),
            actual: Number.isNaN(actual) ? "missing" : fmt(actual),
            diff,
          });
        }
      }
      if (rowBad) bad++;
    }
    check(
      inferPath,
      bad === 0,
      `${golden.length - bad}/${golden.length} golden examples within ${tolerance} (max |Δ| ${maxAbsDiff.toExponential(1)})`,
    );
  }

  // 3. /metrics must carry model_info for this exact version and sha256.
  const metrics = await call(baseUrl, "/metrics", undefined, timeout);
  const infoLine = metrics.text
    .split("\n")
    .find(
      (l) =>
        /^[a-z_]*model_info\{/.test(l) &&
        l.includes(`"${card.version}"`) &&
        l.includes(`"${card.model.sha256}"`),
    );
  check(
    "/metrics",
    metrics.status === 200 && infoLine !== undefined,
    metrics.status !== 200
      ? `status ${metrics.status}`
      : infoLine
        ? "model_info has this version and sha256"
        : `no model_info series with version ${card.version} and sha256 ${card.model.sha256.slice(0, 12)}…`,
  );

  // 4. /model-info must describe this bundle.
  const info = await call(baseUrl, "/model-info", undefined, timeout);
  const parsedInfo = modelInfoSchema.safeParse(info.json);
  const infoOk =
    info.status === 200 &&
    parsedInfo.success &&
    parsedInfo.data.name === card.name &&
    parsedInfo.data.version === card.version &&
    parsedInfo.data.sha256 === card.model.sha256;
  check(
    "/model-info",
    infoOk,
    infoOk
      ? `${card.name} ${card.version}`
      : parsedInfo.success
        ? `serves ${parsedInfo.data.name} ${parsedInfo.data.version} (${parsedInfo.data.sha256.slice(0, 12)}…), expected ${card.name} ${card.version} (${card.model.sha256.slice(0, 12)}…)`
        : `status ${info.status}: ${info.text.slice(0, 120)}`,
  );

  return {
    passed: checks.every((c) => c.ok) && mismatches.length === 0,
    examples: golden.length,
    tolerance,
    maxAbsDiff,
    checks,
    mismatches,
  };
}

/** Checks and mismatches as plain-text tables, for terminals, logs and error messages. */
export function formatSmokeReport(result: SmokeResult, maxRows = 20): string {
  const lines = [
    textTable(
      ["check", "result", "detail"],
      result.checks.map((c) => [c.name, c.ok ? "ok" : "FAILED", c.detail]),
    ),
  ];
  if (result.mismatches.length > 0) {
    const rows = result.mismatches
      .slice(0, maxRows)
      .map((m) => [
        m.example,
        m.route,
        m.input,
        m.field,
        m.expected,
        m.actual,
        m.diff === null ? "" : m.diff.toExponential(2),
      ]);
    lines.push(
      "",
      `golden mismatches (tolerance ${result.tolerance}):`,
      textTable(["#", "route", "input", "field", "expected", "actual", "|diff|"], rows),
    );
    if (result.mismatches.length > maxRows) lines.push(`… and ${result.mismatches.length - maxRows} more`);
  }
  return lines.join("\n");
}
