import cluster, { type Worker } from "node:cluster";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { AggregatorRegistry } from "prom-client";
import { readBundle } from "../src/bundle/read.js";
import type { ModelCard } from "../src/contracts/card.js";
import { ExitCode, UserError } from "../src/util/errors.js";
import { DriftHub } from "./drift.js";
import { isMessage, SETTINGS_ENV_VAR, type ToPrimary, type ToWorker } from "./ipc.js";
import { createLogger } from "./logger.js";
import type { ServeSettings } from "./settings.js";

export interface ReadyInfo {
  url: string;
  port: number;
  workers: number;
  startMs: number;
  card: ModelCard;
}

export interface RunHooks {
  /** Called once the bundle is validated, before workers start. */
  onBundle?: (card: ModelCard) => void;
  /** Called once every worker is warmed up and listening. */
  onReady?: (info: ReadyInfo) => void;
  logger?: Logger;
}

/** V8 young-generation semi-space per worker (MB); Node's default (16) costs ~30 MB RSS for nothing here. */
const WORKER_SEMI_SPACE_MB = 4;
/**
 * After each full GC V8 lets the old space grow to live size × (1 + this/100) before the next one.
 * Its own factor lets a busy worker's old space fill with promoted request garbage: RSS peaked at
 * 147–178 MB per worker under 40k req/s (bench:serve load) against 136–138 MB at 75 %, for no
 * measurable CPU or p99 cost (docs/benchmarks.md).
 */
const WORKER_HEAP_GROWING_PERCENT = 75;

/** Restarts of crashed workers allowed per minute before the server gives up. */
const MAX_RESTARTS_PER_MINUTE = 5;

/**
 * The primary process: validates the bundle, forks one worker per core (each with its own ORT
 * session), answers /metrics for all of them, and turns SIGTERM into a graceful drain.
 * Resolves with the exit code once every worker has left.
 */
export async function runServer(settings: ServeSettings, hooks: RunHooks = {}): Promise<number> {
  if (!cluster.isPrimary) throw new Error("runServer must run in the primary process");
  const started = performance.now();
  const logger = hooks.logger ?? createLogger(settings, { role: "primary" });
  const { card } = await readBundle(settings.modelDir);
  hooks.onBundle?.(card);
  const drift = new DriftHub(card, logger);
  if (settings.chaosErrorRate > 0) {
    logger.warn(
      { chaosErrorRate: settings.chaosErrorRate },
      `CHAOS SWITCH ON: ${Math.round(settings.chaosErrorRate * 100)}% of predict/infer requests will fail with 500 (MODELSHIP_CHAOS_ERROR_RATE — testing only)`,
    );
  }

  const self = fileURLToPath(import.meta.url);
  cluster.setupPrimary({
    exec: self.replace(/supervisor(\.[cm]?[jt]s)$/, `worker${extname(self)}`),
    // A small young generation: request garbage dies young, and RSS stays well under 150 MB per worker.
    execArgv: [
      ...process.execArgv,
      `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`,
      `--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`,
    ],
  });
  const aggregator = new AggregatorRegistry();
  const workerEnv = { [SETTINGS_ENV_VAR]: JSON.stringify(settings) };

  return new Promise<number>((resolve) => {
    const readyWorkers = new Set<number>();
    const everReady = new Set<number>();
    const restarts: number[] = [];
    let announced = false;
    let stopping = false;
    let exitCode: number = ExitCode.ok;
    let port = settings.port;

    const finish = (code: number) => {
      process.off("SIGTERM", onSigterm);
      process.off("SIGINT", onSigint);
      resolve(code);
    };

    const abort = (code: number, message: string) => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      logger.error(message);
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGKILL");
    };

    const fork = (): Worker => {
      const worker = cluster.fork(workerEnv);
      worker.on("message", (msg: unknown) => onMessage(worker, msg));
      return worker;
    };

    const onMessage = (worker: Worker, msg: unknown) => {
      if (drift.handle(worker, msg)) return;
      if (!isMessage<ToPrimary>(msg)) return;
      switch (msg.type) {
        case "modelship:ready": {
          readyWorkers.add(worker.id);
          everReady.add(worker.id);
          port = msg.port;
          logger.info(
            { worker: worker.id, startMs: msg.startMs, golden: msg.golden },
            "worker ready (golden examples reproduced)",
          );
          if (stopping) worker.send({ type: "modelship:drain" } satisfies ToWorker);
          else if (!announced && readyWorkers.size === settings.workers) {
            announced = true;
            const host = settings.host === "0.0.0.0" || settings.host === "::" ? "127.0.0.1" : settings.host;
            const info: ReadyInfo = {
              url: `http://${host}:${port}`,
              port,
              workers: settings.workers,
              startMs: Math.round(performance.now() - started),
              card,
            };
            logger.info(
              { port, workers: info.workers, startMs: info.startMs, model: card.name, version: card.version },
              "ready",
            );
            hooks.onReady?.(info);
          }
          break;
        }
        case "modelship:fatal":
          abort(msg.exitCode, `worker ${worker.id} failed to start: ${msg.message}`);
          break;
        case "modelship:metrics-req":
          drift.appendMetrics(aggregator.clusterMetrics()).then(
            (text) =>
              worker.isConnected() &&
              worker.send({
                type: "modelship:metrics-res",
                id: msg.id,
                text,
                contentType: aggregator.contentType,
              } satisfies ToWorker),
            (err: Error) =>
              worker.isConnected() &&
              worker.send({
                type: "modelship:metrics-res",
                id: msg.id,
                error: err.message,
              } satisfies ToWorker),
          );
          break;
      }
    };

    cluster.on("exit", (worker, code, signal) => {
      readyWorkers.delete(worker.id);
      const left = Object.keys(cluster.workers ?? {}).length;
      if (stopping) {
        if (code !== 0 && exitCode === ExitCode.ok) exitCode = ExitCode.failed;
        logger.info({ worker: worker.id, code, signal }, "worker exited");
        if (left === 0) finish(exitCode);
        return;
      }
      if (!everReady.has(worker.id)) {
        abort(
          code || ExitCode.failed,
          `worker ${worker.id} exited during startup (code ${code}, signal ${signal})`,
        );
        if (left === 0) finish(exitCode);
        return;
      }
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && restarts[0]! < now - 60_000) restarts.shift();
      if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
        abort(ExitCode.failed, `workers keep crashing (${restarts.length} in a minute); giving up`);
        if (left === 0) finish(exitCode);
        return;
      }
      logger.warn({ worker: worker.id, code, signal }, "worker died; starting a replacement");
      fork();
    });

    const drainAll = (signal: string) => {
      if (stopping) {
        logger.info({ signal }, "already draining");
        return;
      }
      stopping = true;
      logger.info({ signal, graceMs: settings.drainGraceMs }, "shutdown requested: draining workers");
      for (const w of Object.values(cluster.workers ?? {})) {
        if (w?.isConnected()) w.send({ type: "modelship:drain" } satisfies ToWorker);
      }
      // Workers bound themselves; this is the backstop if one hangs.
      setTimeout(
        () => {
          const stuck = Object.values(cluster.workers ?? {}).filter(Boolean);
          if (stuck.length === 0) return;
          logger.error({ workers: stuck.length }, "workers did not exit in time; killing them");
          exitCode = ExitCode.failed;
          for (const w of stuck) w?.process.kill("SIGKILL");
        },
        settings.drainGraceMs + settings.shutdownTimeoutMs + 2000,
      ).unref();
    };
    const onSigterm = () => drainAll("SIGTERM");
    const onSigint = () => drainAll("SIGINT");
    process.on("SIGTERM", onSigterm);
    process.on("SIGINT", onSigint);

    for (let i = 0; i < settings.workers; i++) fork();
  }).then((code) => {
    if (code !== ExitCode.ok) logger.warn({ code }, "server stopped with errors");
    else logger.info("server stopped");
    return code;
  });
}

/** Entry for the image and `modelship serve`: a failed start is a UserError with the worker's reason. */
export function assertStarted(code: number): void {
  if (code !== ExitCode.ok)
    throw new UserError("server stopped with errors (see the log above)", { exitCode: code as ExitCode });
}
