import type { FastifyInstance } from "fastify";
import type { TensorSpec } from "../../src/contracts/card.js";
import type { ServerContext } from "../context.js";
import { errorBodySchema, HttpError } from "../errors.js";
import type { ModelInput } from "../model.js";

/**
 * Open Inference Protocol (KServe v2) REST: health, server and model metadata, infer.
 * Text models take one BYTES input [N] (or [N, 1]); tabular models one FP32 input [N, F].
 */

const DATATYPE: Record<TensorSpec["dtype"], string> = {
  string: "BYTES",
  float32: "FP32",
  float64: "FP64",
  int64: "INT64",
  int32: "INT32",
};

function tensorMetadata(spec: TensorSpec) {
  return {
    name: spec.name,
    datatype: DATATYPE[spec.dtype],
    shape: spec.shape.map((d) => (typeof d === "number" ? d : -1)),
  };
}

const paramsSchema = { type: "object" } as const;

export function inferSchemas(ctx: ServerContext) {
  return {
    body: {
      type: "object",
      required: ["inputs"],
      properties: {
        id: { type: "string" },
        parameters: paramsSchema,
        inputs: {
          type: "array",
          minItems: 1,
          items: {
            type: "object",
            required: ["name", "shape", "datatype", "data"],
            properties: {
              name: { type: "string" },
              shape: { type: "array", minItems: 1, maxItems: 2, items: { type: "integer", minimum: 0 } },
              datatype: { type: "string" },
              parameters: paramsSchema,
              data: { type: "array", maxItems: ctx.settings.maxBatchTexts * 1024 },
            },
          },
        },
        outputs: {
          type: "array",
          items: {
            type: "object",
            required: ["name"],
            properties: { name: { type: "string" }, parameters: paramsSchema },
          },
        },
      },
    },
    response: { "4xx": errorBodySchema, "5xx": errorBodySchema },
  } as const;
}

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}

interface InferBody {
  id?: string;
  inputs: InferInput[];
  outputs?: { name: string }[];
}

/** OIP allows row-major nested or flat `data`; we take both and check against `shape`. */
function flatten(data: unknown[], depth: number): unknown[] {
  const out: unknown[] = [];
  const walk = (v: unknown, level: number) => {
    if (Array.isArray(v)) {
      if (level >= depth)
        throw new HttpError(400, `input data is nested deeper than its shape (${depth} dimensions)`);
      for (const x of v) walk(x, level + 1);
    } else out.push(v);
  };
  for (const v of data) walk(v, 1);
  return out;
}

export function registerOip(app: FastifyInstance, ctx: ServerContext, chaos: () => void): void {
  const { model, state, book, settings } = ctx;
  const card = model.card;
  const input = card.io.inputs.find((i) => i.name === model.inputName) ?? card.io.inputs[0]!;
  const labelSpec = card.io.labelOutput
    ? card.io.outputs.find((o) => o.name === card.io.labelOutput)
    : undefined;
  const outputNames = [card.io.probabilitiesOutput, ...(labelSpec ? [labelSpec.name] : [])];
  const expectedDatatype = model.kind === "text" ? "BYTES" : "FP32";
  const metadata = {
    name: card.name,
    versions: [card.version],
    platform: "onnxruntime_onnx",
    inputs: [{ ...tensorMetadata(input), datatype: expectedDatatype }],
    outputs: card.io.outputs.filter((o) => outputNames.includes(o.name)).map(tensorMetadata),
  };

  const isReady = () => state.ready && !state.draining;
  const checkModel = (name: string, version?: string) => {
    if (name !== card.name)
      throw new HttpError(404, `unknown model '${name}'; this server serves '${card.name}'`);
    if (version !== undefined && version !== card.version) {
      throw new HttpError(
        404,
        `unknown version '${version}' of model '${name}'; this server serves ${card.version}`,
      );
    }
  };

  app.get("/v2/health/live", async () => ({ live: true }));
  app.get("/v2/health/ready", async (_req, reply) => {
    const ready = isReady();
    if (!ready) reply.code(503);
    return { ready };
  });
  app.get("/v2", async () => ({ name: "modelship", version: SERVER_VERSION, extensions: [] }));

  for (const prefix of ["/v2/models/:name", "/v2/models/:name/versions/:version"]) {
    type P = { Params: { name: string; version?: string } };
    app.get<P>(prefix, async (req) => {
      checkModel(req.params.name, req.params.version);
      return metadata;
    });
    app.get<P>(`${prefix}/ready`, async (req, reply) => {
      checkModel(req.params.name, req.params.version);
      const ready = isReady();
      if (!ready) reply.code(503);
      return { name: card.name, ready };
    });
    app.post<P & { Body: InferBody }>(`${prefix}/infer`, { schema: inferSchemas(ctx) }, async (req) => {
      checkModel(req.params.name, req.params.version);
      const body = req.body;
      if (body.inputs.length !== 1) {
        throw new HttpError(
          400,
          `model '${card.name}' takes exactly one input ('${input.name}'), got ${body.inputs.length}`,
        );
      }
      const tensor = body.inputs[0]!;
      if (tensor.name !== input.name) {
        throw new HttpError(
          400,
          `unknown input '${tensor.name}'; model '${card.name}' takes '${input.name}'`,
        );
      }
      if (tensor.datatype !== expectedDatatype) {
        throw new HttpError(
          400,
          `input '${tensor.name}' must have datatype ${expectedDatatype}, got ${tensor.datatype}`,
        );
      }
      const inputs = parseInput(tensor, model.kind, model.featureCount, settings);
      const requested = body.outputs?.map((o) => o.name) ?? outputNames;
      for (const name of requested) {
        if (!outputNames.includes(name)) {
          throw new HttpError(
            400,
            `unknown output '${name}'; model '${card.name}' has ${outputNames.map((n) => `'${n}'`).join(", ")}`,
          );
        }
      }
      chaos();
      const predictions = await model.predict(inputs);
      book.record(inputs, predictions);
      const n = predictions.length;
      const outputs = requested.map((name) => {
        if (name === card.io.probabilitiesOutput) {
          const data: number[] = [];
          for (const p of predictions) for (const x of p.probabilities) data.push(x);
          return { name, datatype: "FP32", shape: [n, card.io.labels.length], data };
        }
        // The label output: names for string-labelled graphs, class indices otherwise.
        return labelSpec?.dtype === "string"
          ? { name, datatype: "BYTES", shape: [n], data: predictions.map((p) => p.label) }
          : {
              name,
              datatype: DATATYPE[labelSpec!.dtype],
              shape: [n],
              data: predictions.map((p) => p.labelIndex),
            };
      });
      return {
        model_name: card.name,
        model_version: card.version,
        ...(body.id !== undefined ? { id: body.id } : {}),
        outputs,
      };
    });
  }
}

function parseInput(
  tensor: InferInput,
  kind: "text" | "features",
  featureCount: number | undefined,
  settings: ServerContext["settings"],
): ModelInput[] {
  const shape = tensor.shape;
  const values = flatten(tensor.data, shape.length);
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) {
    throw new HttpError(
      400,
      `input '${tensor.name}' has ${values.length} elements but shape [${shape.join(", ")}] needs ${count}`,
    );
  }
  const rows = shape[0]!;
  if (rows === 0) throw new HttpError(400, `input '${tensor.name}' has no rows`);
  if (rows > settings.maxBatchTexts) {
    throw new HttpError(
      400,
      `input '${tensor.name}' has ${rows} rows; at most ${settings.maxBatchTexts} per request`,
    );
  }
  if (kind === "text") {
    if (shape.length === 2 && shape[1] !== 1) {
      throw new HttpError(
        400,
        `input '${tensor.name}' must have shape [N] or [N, 1], got [${shape.join(", ")}]`,
      );
    }
    return values.map((v, i) => {
      if (typeof v !== "string")
        throw new HttpError(400, `input '${tensor.name}' element ${i} must be a string`);
      if (v.length === 0) throw new HttpError(400, `input '${tensor.name}' element ${i} is empty`);
      if (v.length > settings.maxTextChars) {
        throw new HttpError(
          400,
          `input '${tensor.name}' element ${i} is too long (more than ${settings.maxTextChars} characters)`,
        );
      }
      return v;
    });
  }
  if (shape.length !== 2 || (featureCount !== undefined && shape[1] !== featureCount)) {
    throw new HttpError(
      400,
      `input '${tensor.name}' must have shape [N, ${featureCount ?? "F"}], got [${shape.join(", ")}]`,
    );
  }
  const width = shape[1]!;
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const row = values.slice(r * width, (r + 1) * width);
    row.forEach((v, j) => {
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new HttpError(400, `input '${tensor.name}' element [${r}, ${j}] must be a finite number`);
      }
    });
    out.push(row as number[]);
  }
  return out;
}

export const SERVER_VERSION = "0.1.0";
