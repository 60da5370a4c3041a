import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { errorBodySchema, HttpError } from "../errors.js";
import type { ServedPrediction } from "../model.js";

/** `POST /predict` in the shape of the common FastAPI sentiment tutorial, single or batch. */
export function predictSchemas(ctx: ServerContext) {
  const text = { type: "string", minLength: 1, maxLength: ctx.settings.maxTextChars } as const;
  const item = {
    type: "object",
    properties: {
      text: { type: "string" },
      sentiment: { type: "string" },
      confidence: { type: "number" },
    },
  } as const;
  return {
    body: {
      type: "object",
      properties: {
        text,
        texts: { type: "array", minItems: 1, maxItems: ctx.settings.maxBatchTexts, items: text },
      },
    },
    response: {
      // One object schema for both forms: absent fields are simply left out.
      200: {
        type: "object",
        properties: {
          ...item.properties,
          predictions: { type: "array", items: item },
          model_version: { type: "string" },
        },
      },
      "4xx": errorBodySchema,
      "5xx": errorBodySchema,
    },
  } as const;
}

interface PredictBody {
  text?: string;
  texts?: string[];
}

/** Percent with two decimals, as the tutorial's clients display it. */
export function percent(p: number): number {
  return Math.round(p * 10_000) / 100;
}

function item(text: string, p: ServedPrediction) {
  return { text, sentiment: p.label, confidence: percent(p.confidence) };
}

export function registerPredict(app: FastifyInstance, ctx: ServerContext, chaos: () => void): void {
  const { model, book } = ctx;
  const version = model.card.version;
  app.post<{ Body: PredictBody }>("/predict", { schema: predictSchemas(ctx) }, async (request) => {
    const { text, texts } = request.body;
    if ((text === undefined) === (texts === undefined)) {
      throw new HttpError(
        400,
        'body must have exactly one of "text" (a string) or "texts" (an array of strings)',
      );
    }
    if (model.kind !== "text") {
      throw new HttpError(
        400,
        `model ${model.card.name} takes feature vectors, not text; use POST /v2/models/${model.card.name}/infer`,
      );
    }
    chaos();
    const inputs = texts ?? [text as string];
    const predictions = await model.predict(inputs);
    book.record(inputs, predictions);
    if (texts === undefined) return { ...item(text as string, predictions[0]!), model_version: version };
    return { predictions: predictions.map((p, i) => item(inputs[i]!, p)), model_version: version };
  });
}
