import { isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Counter, Histogram } from "prom-client";
import type { ServerContext } from "./context.js";
import { clientErrorResponse, formatValidationError, HttpError, installErrorHandling } from "./errors.js";
import { registerOip } from "./routes/oip.js";
import { registerPredict } from "./routes/predict.js";
import { registerStatus } from "./routes/status.js";
import { registerTabularPredict } from "./routes/tabular.js";

/** x-request-id values we accept from clients (anything else gets a fresh id). */
const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** How often Node checks the header and request timeouts of incomplete requests. */
const TIMEOUT_CHECK_MS = 250;

/** Builds the HTTP app of one worker. Listening and shutdown belong to the worker. */
export function buildApp(ctx: ServerContext): FastifyInstance {
  const { settings, metrics, state } = ctx;
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    // fastify's two lines per request are replaced by one access-log line (below).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "reqId" }),
    // Honour the caller's (or HAProxy's) x-request-id when it is sane; otherwise mint one.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: settings.bodyLimitBytes,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    http: {
      maxHeaderSize: settings.maxHeaderBytes,
      headersTimeout: settings.headersTimeoutMs,
      // Node enforces both timeouts on a timer that fires every 30 s by default, which let slow
      // clients hold a socket up to 30 s past either limit; check four times a second instead.
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    },
    // Draining = keep answering until the listener closes; refusing with 503 would drop requests.
    return503OnClosing: false,
    forceCloseConnections: "idle",
    ajv: { customOptions: { coerceTypes: false, allErrors: false } },
    schemaErrorFormatter: formatValidationError,
    clientErrorHandler(err: NodeJS.ErrnoException, socket) {
      if (err.code === "ECONNRESET" || socket.destroyed) return;
      const { status, error } = clientErrorResponse(err);
      const body = JSON.stringify({ error });
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${status} ${status === 408 ? "Request Timeout" : status === 431 ? "Request Header Fields Too Large" : "Bad Request"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    },
  });
  // Only JSON bodies; text/plain would otherwise be parsed and fail later with a confusing message.
  app.removeContentTypeParser("text/plain");
  // JSON is UTF-8 (RFC 8259): invalid bytes are refused, not silently replaced with U+FFFD.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    if (!isUtf8(body as Buffer)) return done(new HttpError(400, "request body is not valid UTF-8"));
    parseJson(request, (body as Buffer).toString("utf8"), done);
  });

  const routes: { method: string; pattern: RegExp }[] = [];
  app.addHook("onRoute", (route) => {
    const pattern = new RegExp(`^${route.url.replace(/:[^/]+/g, "[^/]+")}$`);
    for (const method of [route.method].flat()) routes.push({ method, pattern });
  });
  const allowedMethods = (path: string) => [
    ...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method)),
  ];
  installErrorHandling(app, allowedMethods);

  // Label-bound children, cached: prom-client otherwise hashes the label object on every request.
  const series = new Map<string, { requests: Counter.Internal; duration: Histogram.Internal<string> }>();
  const seriesFor = (route: string, method: string, status: string) => {
    const key = `${route} ${method} ${status}`;
    let s = series.get(key);
    if (!s) {
      s = {
        requests: metrics.requests.labels({ route, method, status }),
        duration: metrics.duration.labels({ route, method }),
      };
      series.set(key, s);
    }
    return s;
  };

  const sample = settings.accessLog ? settings.accessLogSample : 0;
  const logAccess = sample >= 1 ? () => true : sample <= 0 ? () => false : () => Math.random() < sample;

  app.addHook("onRequest", (request, reply, done) => {
    const started = performance.now();
    metrics.inFlight.inc();
    reply.header("x-request-id", request.id);
    // 'close' fires for finished and aborted responses alike: in-flight can't leak.
    reply.raw.once("close", () => {
      metrics.inFlight.dec();
      const route = request.routeOptions.url ?? "unmatched";
      const status = reply.raw.writableFinished ? String(reply.raw.statusCode) : "aborted";
      const seconds = (performance.now() - started) / 1000;
      const series = seriesFor(route, request.method, status);
      series.requests.inc();
      series.duration.observe(seconds);
      if (logAccess()) {
        request.log.info(
          { method: request.method, url: request.url, route, status, ms: Math.round(seconds * 1e5) / 100 },
          "request",
        );
      }
    });
    done();
  });

  app.addHook("onSend", (_request, reply, _payload, done) => {
    // While draining, tell keep-alive clients to reconnect (to the load balancer) after this answer.
    if (state.draining) reply.header("connection", "close");
    done();
  });

  const chaos =
    settings.chaosErrorRate > 0
      ? () => {
          if (Math.random() < settings.chaosErrorRate) {
            metrics.chaosErrors.inc();
            throw new HttpError(
              500,
              `chaos: injected failure (MODELSHIP_CHAOS_ERROR_RATE=${settings.chaosErrorRate})`,
            );
          }
        }
      : () => {};

  registerStatus(app, ctx);
  // Tabular models answer /predict with named features (routes/tabular.ts), text models as before.
  if (ctx.model.kind === "features" && ctx.model.card.io.featureColumns)
    registerTabularPredict(app, ctx, chaos);
  else registerPredict(app, ctx, chaos);
  registerOip(app, ctx, chaos);
  return app;
}
