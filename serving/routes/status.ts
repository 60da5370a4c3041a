import type { FastifyInstance } from "fastify";
import type { ModelCard } from "../../src/contracts/card.js";
import type { ServerContext } from "../context.js";

/** The card summary `/model-info` returns: who this model is and how good it was at training. */
export function modelInfo(card: ModelCard) {
  return {
    name: card.name,
    version: card.version,
    sha256: card.model.sha256,
    createdAt: card.createdAt,
    git: card.git,
    task: card.io.task,
    labels: card.io.labels,
    inputs: card.io.inputs,
    outputs: card.io.outputs,
    metrics: {
      accuracy: card.metrics.accuracy,
      macroF1: card.metrics.macroF1,
      ...(card.metrics.rocAuc !== undefined ? { rocAuc: card.metrics.rocAuc } : {}),
      classes: card.metrics.classes,
      testRows: card.metrics.testRows,
    },
    trainer: card.training?.trainer ?? null,
    onnxruntimeVersion: card.runtime.onnxruntimeVersion,
  };
}

/** Liveness, readiness, model card summary and Prometheus metrics. */
export function registerStatus(app: FastifyInstance, ctx: ServerContext): void {
  const { state } = ctx;
  const info = modelInfo(ctx.model.card);

  app.get(
    "/health",
    { schema: { response: { 200: { type: "object", properties: { status: { type: "string" } } } } } },
    async () => ({
      status: "ok",
    }),
  );

  app.get(
    "/ready",
    {
      schema: {
        response: {
          "2xx": { type: "object", properties: { ready: { type: "boolean" } } },
          "5xx": { type: "object", properties: { ready: { type: "boolean" }, reason: { type: "string" } } },
        },
      },
    },
    async (_request, reply) => {
      if (state.ready && !state.draining) return { ready: true };
      reply.code(503);
      return { ready: false, reason: state.draining ? "draining" : "starting" };
    },
  );

  app.get("/model-info", async () => info);

  app.get("/metrics", async (_request, reply) => {
    const { contentType, text } = await ctx.clusterMetrics();
    reply.type(contentType);
    return text;
  });
}
