import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isUserError } from "../src/util/errors.js";

/** A 4xx (or deliberate 5xx) answer with a one-line `{"error"}` body. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  constructor(statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.statusCode = statusCode;
    this.headers = headers;
  }
}

/** The one error body shape, shared by our routes and the Open Inference Protocol routes. */
export const errorBodySchema = {
  type: "object",
  properties: { error: { type: "string" } },
  required: ["error"],
} as const;

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** ajv's first complaint as one line a caller can act on: `body.texts[3] must be a string`. */
export function formatValidationError(errors: ValidationIssue[], dataVar: string): Error {
  const e = errors[0];
  if (!e) return new Error(`invalid ${dataVar}`);
  const where =
    dataVar +
    e.instancePath
      .split("/")
      .slice(1)
      .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
      .join("");
  const p = e.params;
  let what: string;
  switch (e.keyword) {
    case "type":
      what = `must be ${article(String(p.type))}`;
      break;
    case "required":
      what = `is missing required field "${String(p.missingProperty)}"`;
      break;
    case "minLength":
      what = p.limit === 1 ? "must not be empty" : `must be at least ${p.limit} characters`;
      break;
    case "maxLength":
      what = `is too long (more than ${p.limit} characters)`;
      break;
    case "minItems":
      what = p.limit === 1 ? "must not be empty" : `must have at least ${p.limit} items`;
      break;
    case "maxItems":
      what = `has too many items (at most ${p.limit})`;
      break;
    default:
      what = e.message ?? "is invalid";
  }
  return new Error(`${where} ${what}`);
}

function article(type: string): string {
  const t = type.replace(",", " or ");
  return /^(object|array|integer)/.test(t) ? `an ${t}` : `a ${t}`;
}

const FASTIFY_MESSAGES: Record<string, (req: FastifyRequest, err: FastifyError) => string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (req) =>
    `unsupported content type ${JSON.stringify(req.headers["content-type"] ?? "(none)")}; send application/json`,
  FST_ERR_CTP_BODY_TOO_LARGE: (req) => `request body too large (limit ${req.routeOptions.bodyLimit} bytes)`,
  FST_ERR_CTP_EMPTY_JSON_BODY: () => "request body is empty; send a JSON object",
  FST_ERR_CTP_INVALID_JSON_BODY: () => "request body is not valid JSON",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => "request body size does not match Content-Length",
  FST_ERR_BAD_URL: () => "malformed URL",
};

/** JSON error bodies everywhere; only our own bugs become 500 (logged with the request id). */
export function installErrorHandling(app: FastifyInstance, allowedMethods: (url: string) => string[]): void {
  app.setErrorHandler((err: FastifyError | HttpError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof HttpError) {
      reply.headers(err.headers);
      return reply.code(err.statusCode).send({ error: err.message });
    }
    if (err.validation) return reply.code(400).send({ error: err.message });
    if (isUserError(err)) {
      // Input the model itself rejected after schema validation (e.g. a feature vector ORT refuses).
      return reply.code(400).send({ error: err.message });
    }
    const status = err.statusCode;
    if (typeof status === "number" && status >= 400 && status < 500) {
      const describe = err.code ? FASTIFY_MESSAGES[err.code] : undefined;
      return reply.code(status).send({ error: describe ? describe(request, err) : firstLine(err.message) });
    }
    request.log.error({ err }, "request failed");
    return reply.code(500).send({ error: `internal error (request id ${request.id})` });
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? request.url;
    const allow = allowedMethods(path);
    if (allow.length > 0) {
      reply.header("allow", allow.join(", "));
      return reply
        .code(405)
        .send({ error: `method ${request.method} not allowed on ${path}; use ${allow.join(" or ")}` });
    }
    return reply.code(404).send({ error: `no such route: ${request.method} ${path}` });
  });
}

/** Errors Node's HTTP parser raises before fastify sees a request (oversized headers, timeouts, garbage). */
export function clientErrorResponse(err: NodeJS.ErrnoException): { status: number; error: string } {
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") return { status: 408, error: "request not received in time" };
  if (err.code === "HPE_HEADER_OVERFLOW") return { status: 431, error: "request headers too large" };
  return { status: 400, error: "malformed HTTP request" };
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.trim();
}
