import { z } from "zod";
import type { ModelCard } from "../contracts/card.js";

/**
 * The tabular half of the golden smoke test: every golden example through `POST /predict` with named
 * features in one batch, labels (integers as the user's integers) and every class probability compared.
 */
const itemSchema = z
  .object({
    label: z.union([z.string(), z.number()]),
    probability: z.number(),
    probabilities: z.record(z.string(), z.number()),
  })
  .loose();
const batchSchema = z.object({ predictions: z.array(itemSchema), model_version: z.string() }).loose();

export interface FeatureSmoke {
  ok: boolean;
  detail: string;
  maxAbsDiff: number;
  mismatches: { example: number; field: string; expected: string; actual: string; diff: number | null }[];
}

/** The `/predict` body for golden feature rows. */
export function featuresBody(card: ModelCard): { features: Record<string, number>[] } {
  const columns = card.io.featureColumns ?? [];
  return {
    features: card.golden.map((g) =>
      Object.fromEntries(columns.map((c, i) => [c, (g.input as number[])[i]!])),
    ),
  };
}

export function checkFeatureAnswer(
  card: ModelCard,
  status: number,
  json: unknown,
  text: string,
  tolerance: number,
): FeatureSmoke {
  const parsed = batchSchema.safeParse(json);
  if (status !== 200 || !parsed.success || parsed.data.predictions.length !== card.golden.length) {
    return {
      ok: false,
      detail: `status ${status}: ${text.slice(0, 120)}`,
      maxAbsDiff: Number.POSITIVE_INFINITY,
      mismatches: [],
    };
  }
  const mismatches: FeatureSmoke["mismatches"] = [];
  let maxAbsDiff = 0;
  const intLabels = card.io.labelType === "int64";
  card.golden.forEach((g, i) => {
    const p = parsed.data.predictions[i]!;
    if (String(p.label) !== g.expected.label || (intLabels && typeof p.label !== "number")) {
      mismatches.push({
        example: i,
        field: "label",
        expected: g.expected.label,
        actual: JSON.stringify(p.label),
        diff: null,
      });
    }
    card.io.labels.forEach((l, c) => {
      const actual = p.probabilities[l];
      const diff =
        actual === undefined ? Number.POSITIVE_INFINITY : Math.abs(actual - g.expected.probabilities[c]!);
      maxAbsDiff = Math.max(maxAbsDiff, diff);
      if (!(diff <= tolerance)) {
        mismatches.push({
          example: i,
          field: `p(${l})`,
          expected: g.expected.probabilities[c]!.toFixed(6),
          actual: actual === undefined ? "missing" : actual.toFixed(6),
          diff,
        });
      }
    });
  });
  const ok = mismatches.length === 0 && parsed.data.model_version === card.version;
  return {
    ok,
    detail: ok
      ? `${card.golden.length} named-feature rows in one request, labels match, max |Δp| ${maxAbsDiff.toExponential(1)}`
      : parsed.data.model_version !== card.version
        ? `model_version ${parsed.data.model_version} ≠ ${card.version}`
        : `${mismatches.length} mismatches`,
    maxAbsDiff,
    mismatches,
  };
}
