import type { ShadowTargetInput } from "../router/schema.js";
import { fetchPairs, type ShadowHeader } from "./collect.js";
import { compareShadow, type ShadowConfigInput, type ShadowPair, type ShadowReport } from "./compare.js";

/** What a shadow run needs of the traffic layer (the Router has exactly these). */
export interface ShadowMirror {
  setShadow(target: ShadowTargetInput | null): Promise<void>;
  shadowPairsUrl(since?: number): string;
}

export interface ShadowRunOptions {
  /** How long the mirror runs before the first verdict. */
  durationMs: number;
  /** Inconclusive verdicts (too few pairs) extend the run by durationMs this many times. */
  maxExtensions: number;
  thresholds?: ShadowConfigInput;
  /** The candidate's labels (completes binary text answers for |Δp|). */
  labels?: readonly string[];
  /** Keep request texts out of the report (the prediction log hashes text). */
  hideInput?: boolean;
  sleep: (ms: number) => Promise<void>;
  /** Called after every interval with the verdict so far (progress line). */
  onInterval?: (report: ShadowReport, extension: number) => void;
}

export interface ShadowRunResult {
  report: ShadowReport;
  header: ShadowHeader;
  extensions: number;
}

/**
 * The shadow step: mirror live traffic to `target`, judge answer by answer, extend while
 * inconclusive, and always take the mirror down again (also on error). Users are never routed to
 * the candidate: it only ever receives copies.
 */
export async function runShadow(
  mirror: ShadowMirror,
  target: ShadowTargetInput,
  options: ShadowRunOptions,
): Promise<ShadowRunResult> {
  await mirror.setShadow(target);
  try {
    const pairs: ShadowPair[] = [];
    let since = 0;
    let extensions = 0;
    for (;;) {
      await options.sleep(options.durationMs);
      const batch = await fetchPairs(mirror.shadowPairsUrl(since), { hideInput: options.hideInput ?? false });
      pairs.push(...batch.pairs);
      since = Math.max(since, batch.lastSeq);
      const report = compareShadow(pairs, options.thresholds ?? {}, options.labels);
      options.onInterval?.(report, extensions);
      if (report.verdict !== "inconclusive" || extensions >= options.maxExtensions) {
        return { report, header: batch.header, extensions };
      }
      extensions++;
    }
  } finally {
    await mirror.setShadow(null);
  }
}
