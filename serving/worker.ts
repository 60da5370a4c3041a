import cluster from "node:cluster";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { readBundle } from "../src/bundle/read.js";
import { describeError, ExitCode, isUserError } from "../src/util/errors.js";
import { buildApp } from "./app.js";
import type { ServerContext, WorkerState } from "./context.js";
import { DriftRecorder, registerDriftRoute } from "./drift.js";
import { isMessage, SETTINGS_ENV_VAR, type ToPrimary, type ToWorker } from "./ipc.js";
import { createLogger, flushLogs } from "./logger.js";
import { createServerMetrics } from "./metrics.js";
import { ServedModel } from "./model.js";
import { PredictionBook } from "./predictions.js";
import { type ServeSettings, serveSettingsSchema } from "./settings.js";

/**
 * One worker process: one ORT session, one fastify app on the shared port. It listens only after
 * the golden examples reproduce, so a reachable worker is always a warmed one.
 */

function exitFlushed(code: number): never {
  flushLogs();
  process.exit(code);
}

function send(msg: ToPrimary): void {
  process.send?.(msg);
}

function metricsFromPrimary(): () => Promise<{ contentType: string; text: string }> {
  let next = 0;
  const pending = new Map<
    number,
    { resolve: (v: { contentType: string; text: string }) => void; reject: (e: Error) => void }
  >();
  process.on("message", (msg: unknown) => {
    if (!isMessage<ToWorker>(msg) || msg.type !== "modelship:metrics-res") return;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error !== undefined || msg.text === undefined)
      p.reject(new Error(`metrics unavailable: ${msg.error}`));
    else
      p.resolve({
        contentType: msg.contentType ?? "text/plain; version=0.0.4; charset=utf-8",
        text: msg.text,
      });
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("metrics: primary did not answer within 6s"));
      }, 6000);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      send({ type: "modelship:metrics-req", id });
    });
}

async function start(settings: ServeSettings, logger: Logger): Promise<void> {
  const started = performance.now();
  // The primary already checked the model file against its sha256.
  const bundle = await readBundle(settings.modelDir, { verifyHash: false });
  const model = await ServedModel.open(bundle, {
    coalesceRows: settings.coalesceRows,
    warn: (message) => logger.warn(message),
  });
  const golden = await model.verifyGolden(settings.goldenTolerance);
  const metrics = createServerMetrics(bundle.card, () => model.runStats);
  const drift = await DriftRecorder.open(bundle);
  const state: WorkerState = { ready: false, draining: false };
  const ctx: ServerContext = {
    model,
    settings,
    metrics,
    book: new PredictionBook(metrics, bundle.card.io.labels, drift),
    state,
    logger,
    clusterMetrics: metricsFromPrimary(),
  };
  const app = buildApp(ctx);
  registerDriftRoute(app, drift);
  await app.listen({ host: settings.host, port: settings.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : settings.port;
  state.ready = true;
  metrics.ready.set(1);
  installDrain(app, ctx);
  send({ type: "modelship:ready", port, golden, startMs: Math.round(performance.now() - started) });
}

/** SIGTERM path: readiness false now, keep serving for the grace period, then close and exit. */
function installDrain(app: FastifyInstance, ctx: ServerContext): void {
  const { state, settings, logger, metrics } = ctx;
  const drain = (why: string) => {
    if (state.draining) return;
    state.draining = true;
    metrics.ready.set(0);
    logger.info({ why, graceMs: settings.drainGraceMs }, "draining: readiness false, still serving");
    setTimeout(() => {
      const hard = setTimeout(() => {
        logger.warn(
          { timeoutMs: settings.shutdownTimeoutMs },
          "in-flight requests did not finish in time; exiting",
        );
        exitFlushed(ExitCode.failed);
      }, settings.shutdownTimeoutMs);
      hard.unref();
      app.close().then(
        async () => {
          await ctx.model.close();
          logger.info("drained; exiting");
          exitFlushed(ExitCode.ok);
        },
        (err) => {
          logger.error({ err }, "close failed");
          exitFlushed(ExitCode.failed);
        },
      );
    }, settings.drainGraceMs);
  };
  process.on("message", (msg: unknown) => {
    if (isMessage<ToWorker>(msg) && msg.type === "modelship:drain") drain("primary asked");
  });
  // Ctrl-C reaches the whole process group; docker stop only the primary (which forwards).
  process.on("SIGTERM", () => drain("SIGTERM"));
  process.on("SIGINT", () => drain("SIGINT"));
}

if (cluster.isWorker) {
  const settings = serveSettingsSchema.parse(JSON.parse(process.env[SETTINGS_ENV_VAR] ?? "null"));
  const logger = createLogger(settings, { worker: cluster.worker?.id });
  // Until ready, signals just end the process (nothing to drain).
  start(settings, logger).catch((err: unknown) => {
    const message = describeError(err);
    logger.error({ err: isUserError(err) ? undefined : err }, message);
    send({ type: "modelship:fatal", message, exitCode: isUserError(err) ? err.exitCode : ExitCode.failed });
    setTimeout(() => exitFlushed(isUserError(err) ? err.exitCode : ExitCode.failed), 50);
  });
}
