import { get } from "node:http";
import { z } from "zod";
import { parseAnswer, type ShadowPair } from "./compare.js";

/**
 * Reads the pairs the edge's shadow mirror recorded (NDJSON from `lua.shadow_pairs`: a header line
 * with counters, then one line per mirrored request) into comparison pairs.
 */

export const ShadowHeader = z.object({
  seq: z.number().int().min(0),
  sampled: z.number().int().min(0),
  dropped: z.number().int().min(0),
  skipped: z.number().int().min(0),
  errors: z.number().int().min(0),
  queued: z.number().int(),
});
export type ShadowHeader = z.infer<typeof ShadowHeader>;

const RawPair = z.object({
  seq: z.number().int().min(1),
  request: z.string(),
  stable: z.string(),
  stableMs: z.number(),
  status: z.number().int(),
  candidate: z.string(),
  candidateMs: z.number(),
  error: z.string(),
});

export interface ShadowBatch {
  header: ShadowHeader;
  pairs: ShadowPair[];
  /** Pass as `since` next time. */
  lastSeq: number;
}

const json = (s: string): unknown => {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
};

/** The request's text (text bundles) or its JSON (tabular), for the disagreement examples. */
function inputOf(body: unknown, raw: string): string {
  if (body && typeof body === "object" && "text" in body && typeof body.text === "string") return body.text;
  return raw;
}

/** Parses one NDJSON answer of the pairs service; throws on a malformed header. */
export function parsePairs(ndjson: string, options: { hideInput?: boolean } = {}): ShadowBatch {
  const lines = ndjson.split("\n").filter((l) => l.trim() !== "");
  const header = ShadowHeader.parse(json(lines[0] ?? ""));
  const pairs: ShadowPair[] = [];
  let lastSeq = 0;
  for (const line of lines.slice(1)) {
    const raw = RawPair.safeParse(json(line));
    if (!raw.success) continue;
    const r = raw.data;
    lastSeq = Math.max(lastSeq, r.seq);
    const stable = parseAnswer(json(r.stable));
    // A batch request or an answer we cannot read is not a comparable pair.
    if (!stable) continue;
    const candidate = r.status === 200 ? parseAnswer(json(r.candidate)) : null;
    const pair: ShadowPair = {
      stable,
      candidate,
      candidateMs: r.candidateMs,
      stableMs: r.stableMs,
      ...(candidate === null
        ? { candidateError: r.error || (r.status === 0 ? "no answer" : `HTTP ${r.status}`) }
        : {}),
      ...(options.hideInput ? {} : { input: inputOf(json(r.request), r.request) }),
    };
    pairs.push(pair);
  }
  return { header, pairs, lastSeq: Math.max(lastSeq, 0) };
}

/** Fetches the pairs recorded after `since` from the mirror's URL (the router's shadowPairsUrl). */
export async function fetchPairs(url: string, options: { hideInput?: boolean; timeoutMs?: number } = {}) {
  const res = await getOnFreshConnection(url, options.timeoutMs ?? 5000);
  if (res.status !== 200) throw new Error(`shadow pairs: HTTP ${res.status} from ${url}`);
  return parsePairs(res.body, options);
}

/**
 * A GET on a new connection: after a seamless reload (the mirror is switched on and off by reloading
 * HAProxy) a pooled keep-alive connection still reaches the old process, whose Lua ring holds the pairs
 * of the previous target.
 */
function getOnFreshConnection(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: timeoutMs, headers: { connection: "close" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`shadow pairs: no answer from ${url} in ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}
