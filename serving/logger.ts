import { type Logger, pino } from "pino";
import type { ServeSettings } from "./settings.js";

const destinations: { flushSync: () => void }[] = [];

/** Log lines are written in batches of this many bytes, and at least every LOG_FLUSH_MS. */
export const LOG_BUFFER_BYTES = 4096;
export const LOG_FLUSH_MS = 50;

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
  // Asynchronous, buffered stdout: lines collect up to 4 KiB (or 50 ms) per write. A write per
  // access-log line — each an fs.write on libuv's thread pool — cost more CPU than the line itself
  // (bench:path). flushLogs() before exit writes what is left.
  const destination = pino.destination({
    dest: 1,
    sync: false,
    minLength: LOG_BUFFER_BYTES,
    periodicFlush: LOG_FLUSH_MS,
  });
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
