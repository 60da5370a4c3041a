/** Messages between the primary and its workers (prom-client's own messages share the channel). */
export type ToWorker =
  | { type: "modelship:drain" }
  | { type: "modelship:metrics-res"; id: number; contentType?: string; text?: string; error?: string };

export type ToPrimary =
  | { type: "modelship:ready"; port: number; golden: { examples: number; maxDiff: number }; startMs: number }
  | { type: "modelship:fatal"; message: string; exitCode: number }
  | { type: "modelship:metrics-req"; id: number };

export const SETTINGS_ENV_VAR = "MODELSHIP_SERVE_SETTINGS";

export function isMessage<T extends { type: string }>(msg: unknown): msg is T {
  return typeof msg === "object" && msg !== null && typeof (msg as { type?: unknown }).type === "string";
}
