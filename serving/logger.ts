import { type Logger, pino } from "pino";
import type { ServeSettings } from "./settings.js";

/** JSON lines on stdout; request bodies are never logged (fastify's serializers omit them). */
export function createLogger(
  settings: Pick<ServeSettings, "logLevel">,
  bindings: Record<string, unknown>,
): Logger {
  return pino({
    level: settings.logLevel,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
