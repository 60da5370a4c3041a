import type { FastifyInstance } from "fastify";
import type { FeatureSpec } from "../../src/contracts/card.js";
import type { ServerContext } from "../context.js";
import { errorBodySchema, HttpError } from "../errors.js";
import type { ServedPrediction } from "../model.js";

/**
 * `POST /predict` for tabular models, in the shape a user's own API had: named features
 * `{"features": {"alcohol": 13.2, …}}` or a batch `{"features": [{…}, {…}]}`. Answers the label
 * (integer classes as numbers, as the user trained them), its probability, every class probability
 * and `model_version`. A missing, unknown, non-numeric or non-finite feature is a 400 naming it; the
 * range guard (MODELSHIP_RANGE_GUARD) compares values with the bundle's feature schema.
 */

type Row = Record<string, unknown>;

export interface FeatureRequest {
  rows: number[][];
  batch: boolean;
  warnings: string[];
}

const SHAPE =
  'body must be {"features": {"<name>": <number>, …}} or {"features": [{…}, …]} with the model\'s feature names';

/** Validates a request body against the model's feature names; pure, so tests call it directly. */
export function parseFeatureRequest(
  body: unknown,
  columns: readonly string[],
  specs: readonly FeatureSpec[] | undefined,
  options: { maxBatch: number; rangeGuard: "off" | "warn" | "reject"; modelName: string },
): FeatureRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, SHAPE);
  if ("text" in body || "texts" in body) {
    throw new HttpError(
      400,
      `model ${options.modelName} takes feature vectors, not text; use POST /v2/models/${options.modelName}/infer or {"features": {${columns
        .slice(0, 2)
        .map((c) => `"${c}": …`)
        .join(", ")}}}`,
    );
  }
  const extra = Object.keys(body).filter((k) => k !== "features");
  if (extra.length > 0) throw new HttpError(400, `unexpected field "${extra[0]}": ${SHAPE}`);
  const features = (body as { features?: unknown }).features;
  const batch = Array.isArray(features);
  const items: unknown[] = batch ? (features as unknown[]) : [features];
  if (features === undefined || items.length === 0) throw new HttpError(400, SHAPE);
  if (items.length > options.maxBatch)
    throw new HttpError(400, `batch of ${items.length} rows is over the limit of ${options.maxBatch}`);
  const known = new Set(columns);
  const warnings: string[] = [];
  const rows = items.map((item, r) => {
    const where = batch ? ` (row ${r})` : "";
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw new HttpError(400, SHAPE);
    const obj = item as Row;
    for (const k of Object.keys(obj)) {
      if (!known.has(k)) {
        throw new HttpError(400, `unknown feature "${k}"${where}; the model takes: ${columns.join(", ")}`);
      }
    }
    return columns.map((name, j) => {
      if (!(name in obj)) throw new HttpError(400, `feature "${name}" is missing${where}`);
      const v = obj[name];
      if (typeof v !== "number") {
        throw new HttpError(
          400,
          `feature "${name}" must be a number${where}, got ${JSON.stringify(v)?.slice(0, 40)}`,
        );
      }
      if (!Number.isFinite(v)) throw new HttpError(400, `feature "${name}" must be a finite number${where}`);
      const spec = specs?.[j];
      if (spec && options.rangeGuard !== "off" && (v < spec.min || v > spec.max)) {
        const msg = `feature "${name}" = ${v}${where} is outside the range seen in the reference data [${spec.min}, ${spec.max}]`;
        if (options.rangeGuard === "reject") throw new HttpError(400, `${msg} (range guard: reject)`);
        warnings.push(msg);
      }
      return v;
    });
  });
  return { rows, batch, warnings };
}

export function registerTabularPredict(app: FastifyInstance, ctx: ServerContext, chaos: () => void): void {
  const { model, book, settings } = ctx;
  const card = model.card;
  const columns = card.io.featureColumns ?? [];
  const specs = card.reference.features;
  const labels = card.io.labels;
  const asUserLabel: (l: string) => string | number = card.io.labelType === "int64" ? Number : (l) => l;
  const item = (p: ServedPrediction) => {
    const probabilities: Record<string, number> = {};
    labels.forEach((l, i) => {
      probabilities[l] = p.probabilities[i]!;
    });
    return { label: asUserLabel(p.label), probability: p.confidence, probabilities };
  };
  app.post(
    "/predict",
    { schema: { body: { type: "object" }, response: { "4xx": errorBodySchema, "5xx": errorBodySchema } } },
    async (request) => {
      const parsed = parseFeatureRequest(request.body, columns, specs, {
        maxBatch: settings.maxBatchTexts,
        rangeGuard: settings.rangeGuard,
        modelName: card.name,
      });
      chaos();
      const predictions = await model.predict(parsed.rows);
      book.record(parsed.rows, predictions);
      const extra = parsed.warnings.length > 0 ? { warnings: parsed.warnings } : {};
      if (parsed.warnings.length > 0)
        request.log.warn({ warnings: parsed.warnings.slice(0, 3) }, "range guard");
      if (!parsed.batch) return { ...item(predictions[0]!), model_version: card.version, ...extra };
      return { predictions: predictions.map(item), model_version: card.version, ...extra };
    },
  );
}
