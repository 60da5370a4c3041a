import { type Logger, pino } from "pino";
import type { ServeSettings } from "./settings.js";

const destinations: { flushSync: () => void }[] = [];

/** Writes out buffered log lines; call right before process.exit(). */
export function flushLogs(): void {
  for (const d of destinations) {
    try {
      d.flushSync();
    } catch {
      // stdout gone (EPIPE) or not ready yet: nothing left to save
    }
  }
}

/** JSON lines on stdout; request bodies are never logged (fastify's serializers omit them). */
export function createLogger(
  settings: Pick<ServeSettings, "logLevel">,
  bindings: Record<string, unknown>,
): Logger {
  // Asynchronous stdout: a write syscall per access-log line costs throughput. flushLogs() before exit.
  const destination = pino.destination({ dest: 1, sync: false });
  destinations.push(destination);
  return pino(
    {
      level: settings.logLevel,
      base: { pid: process.pid, ...bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
