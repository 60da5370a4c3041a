import { z } from "zod";
import { percentile } from "../stats/distribution.js";

/**
 * The shadow step's judgement: stable's and the candidate's answers to the SAME live requests,
 * compared answer by answer. Pure: pairs in, figures and a verdict out.
 */

/** One model's answer, reduced to what the comparison needs. */
export interface ShadowAnswer {
  label: string;
  /** Class → probability; may hold only the predicted class (the text route answers its confidence only). */
  probabilities: Record<string, number>;
}

/** One mirrored request: stable's answer (what the user got) and the candidate's, or its error. */
export interface ShadowPair {
  stable: ShadowAnswer;
  /** null when the candidate failed (5xx, timeout, connection error, unreadable answer). */
  candidate: ShadowAnswer | null;
  candidateError?: string;
  /** Milliseconds the candidate took (answered or not), when measured. */
  candidateMs?: number;
  stableMs?: number;
  /** The request's text or a short rendering of its features, shown for disagreements unless hidden. */
  input?: string;
}

/** A `shadow` first step without a duration (`--steps shadow,5,…`, no `--shadow`) mirrors this long. */
export const SHADOW_STEP_MS = 60_000;
/** …and this long with `--fast` (the demo: a few seconds at its 200 req/s is hundreds of pairs). */
export const FAST_SHADOW_STEP_MS = 3000;

export const shadowConfigSchema = z.object({
  /** Largest share of pairs whose labels differ (point estimate, judged once minPairs are in). */
  maxDisagreement: z.number().min(0).max(1).default(0.02),
  /** Largest mean |Δp| (largest per-class probability difference per pair). */
  maxMeanAbsDelta: z.number().min(0).max(1).default(0.05),
  /** Largest share of mirrored requests the candidate failed. */
  maxErrorRate: z.number().min(0).max(1).default(0.01),
  /** Answered pairs (or, for the error check, attempts) needed before the step passes or fails. */
  minPairs: z.number().int().min(1).default(100),
  /** Disagreeing requests kept as examples (0 = none, e.g. when the prediction log hashes text). */
  examples: z.number().int().min(0).max(20).default(3),
  /** Characters of an example's input shown. */
  exampleChars: z.number().int().min(8).max(500).default(80),
});
export type ShadowConfig = z.infer<typeof shadowConfigSchema>;
export type ShadowConfigInput = z.input<typeof shadowConfigSchema>;

export type ShadowStatus = "pass" | "fail" | "inconclusive";

export interface Interval {
  low: number;
  high: number;
}

export interface ShadowCheck {
  name: "errors" | "disagreement" | "meanAbsDelta";
  status: ShadowStatus;
  value: number | null;
  threshold: number;
  message: string;
}

export interface ShadowExample {
  input: string;
  stable: ShadowAnswer;
  candidate: ShadowAnswer;
}

export interface ShadowReport {
  verdict: ShadowStatus;
  /** Mirrored requests (answered + failed). */
  attempts: number;
  /** Requests both models answered. */
  pairs: number;
  agreements: number;
  agreement: number | null;
  /** Wilson score 95 % interval of the agreement rate. */
  agreementCi: Interval | null;
  /** stable label → candidate label → count. */
  flips: Record<string, Record<string, number>>;
  meanAbsDelta: number | null;
  p95AbsDelta: number | null;
  candidateErrors: number;
  candidateP50Ms: number | null;
  candidateP95Ms: number | null;
  stableP95Ms: number | null;
  checks: ShadowCheck[];
  examples: ShadowExample[];
  summary: string;
}

const Z95 = 1.959963984540054;

/** Wilson score interval for k successes out of n (n > 0). */
export function wilson(k: number, n: number, z = Z95): Interval {
  if (n <= 0) throw new Error("wilson: n must be positive");
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** Fills in a binary answer's missing class (1 − the other) so both sides have every class. */
function complete(a: ShadowAnswer, labels: readonly string[] | undefined): Record<string, number> {
  const p = { ...a.probabilities };
  if (labels && labels.length === 2) {
    const [x, y] = labels as [string, string];
    if (p[x] !== undefined && p[y] === undefined) p[y] = 1 - p[x];
    else if (p[y] !== undefined && p[x] === undefined) p[x] = 1 - p[y];
  }
  return p;
}

/** Largest |p_stable(c) − p_candidate(c)| over classes both answers carry; null when they share none. */
export function absDelta(s: ShadowAnswer, c: ShadowAnswer, labels?: readonly string[]): number | null {
  const ps = complete(s, labels);
  const pc = complete(c, labels);
  let best: number | null = null;
  for (const [k, v] of Object.entries(ps)) {
    const w = pc[k];
    if (w === undefined) continue;
    const d = Math.abs(v - w);
    best = best === null ? d : Math.max(best, d);
  }
  return best;
}

const truncate = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Judges a shadow run. Inconclusive (→ extend) until minPairs answered pairs, except that a candidate
 * failing more than maxErrorRate of at least minPairs attempts fails, and one whose disagreement is
 * already certain (Wilson lower bound above maxDisagreement) fails early.
 */
export function compareShadow(
  pairs: readonly ShadowPair[],
  configInput: ShadowConfigInput = {},
  labels?: readonly string[],
): ShadowReport {
  const config = shadowConfigSchema.parse(configInput);
  const answered = pairs.filter((p) => p.candidate !== null);
  const attempts = pairs.length;
  const errors = attempts - answered.length;
  const n = answered.length;
  const flips: Record<string, Record<string, number>> = {};
  const deltas: number[] = [];
  const examples: ShadowExample[] = [];
  let agreements = 0;
  for (const p of answered) {
    const c = p.candidate as ShadowAnswer;
    const row = flips[p.stable.label] ?? {};
    flips[p.stable.label] = row;
    row[c.label] = (row[c.label] ?? 0) + 1;
    if (c.label === p.stable.label) agreements++;
    else if (examples.length < config.examples && p.input !== undefined) {
      examples.push({ input: truncate(p.input, config.exampleChars), stable: p.stable, candidate: c });
    }
    const d = absDelta(p.stable, c, labels);
    if (d !== null) deltas.push(d);
  }
  deltas.sort((a, b) => a - b);
  const msOf = (xs: (number | undefined)[]) =>
    xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const candMs = msOf(pairs.map((p) => p.candidateMs));
  const stableMs = msOf(pairs.map((p) => p.stableMs));
  const q = (xs: number[], f: number) => (xs.length > 0 ? percentile(xs, f) : null);

  const agreement = n > 0 ? agreements / n : null;
  const agreementCi = n > 0 ? wilson(agreements, n) : null;
  const meanAbsDelta = deltas.length > 0 ? deltas.reduce((a, b) => a + b, 0) / deltas.length : null;

  const checks: ShadowCheck[] = [];
  const errorRate = attempts > 0 ? errors / attempts : null;
  checks.push({
    name: "errors",
    threshold: config.maxErrorRate,
    value: errorRate,
    status:
      errorRate === null || attempts < config.minPairs
        ? // enough failures to exceed the threshold on minPairs attempts already: fail now
          errors > config.maxErrorRate * config.minPairs
          ? "fail"
          : "inconclusive"
        : errors > config.maxErrorRate * attempts + 1e-9
          ? "fail"
          : "pass",
    message: `candidate failed ${errors} of ${attempts} mirrored requests`,
  });
  const disagreement = agreement === null ? null : 1 - agreement;
  const certainFail =
    agreementCi !== null &&
    1 - agreementCi.high > config.maxDisagreement &&
    n >= Math.min(20, config.minPairs);
  checks.push({
    name: "disagreement",
    threshold: config.maxDisagreement,
    value: disagreement,
    status:
      disagreement === null
        ? "inconclusive"
        : n < config.minPairs
          ? certainFail
            ? "fail"
            : "inconclusive"
          : n - agreements > config.maxDisagreement * n + 1e-9
            ? "fail"
            : "pass",
    message:
      disagreement === null
        ? "no answered pairs yet"
        : `${n - agreements} of ${n} answers differ (${pct(disagreement)})`,
  });
  checks.push({
    name: "meanAbsDelta",
    threshold: config.maxMeanAbsDelta,
    value: meanAbsDelta,
    status:
      meanAbsDelta === null || n < config.minPairs
        ? "inconclusive"
        : meanAbsDelta > config.maxMeanAbsDelta
          ? "fail"
          : "pass",
    message: meanAbsDelta === null ? "no comparable probabilities" : `mean |Δp| ${meanAbsDelta.toFixed(4)}`,
  });
  const verdict: ShadowStatus = checks.some((c) => c.status === "fail")
    ? "fail"
    : checks.every((c) => c.status === "pass")
      ? "pass"
      : "inconclusive";
  const summary =
    agreement === null || agreementCi === null
      ? `shadow ${verdict}: ${attempts} mirrored, ${errors} candidate errors, no answered pairs`
      : `shadow ${verdict}: agreement ${pct(agreement)} (95% CI ${pct(agreementCi.low)}–${pct(agreementCi.high)}) on ${n} pairs, mean |Δp| ${(meanAbsDelta ?? 0).toFixed(3)}, ${errors} candidate errors`;
  return {
    verdict,
    attempts,
    pairs: n,
    agreements,
    agreement,
    agreementCi,
    flips,
    meanAbsDelta,
    p95AbsDelta: q(deltas, 0.95),
    candidateErrors: errors,
    candidateP50Ms: q(candMs, 0.5),
    candidateP95Ms: q(candMs, 0.95),
    stableP95Ms: q(stableMs, 0.95),
    checks,
    examples,
    summary,
  };
}

/** Markdown flip matrix (rows: stable's label, columns: the candidate's), for the job summary. */
export function flipMatrixMarkdown(flips: ShadowReport["flips"]): string {
  const labels = [
    ...new Set([...Object.keys(flips), ...Object.values(flips).flatMap((r) => Object.keys(r))]),
  ].sort();
  if (labels.length === 0) return "_no answered pairs_";
  const head = `| stable ↓ / candidate → | ${labels.join(" | ")} |`;
  const rule = `|---|${labels.map(() => "---:").join("|")}|`;
  const rows = labels.map(
    (s) => `| **${s}** | ${labels.map((c) => String(flips[s]?.[c] ?? 0)).join(" | ")} |`,
  );
  return [head, rule, ...rows].join("\n");
}

const textAnswer = z.object({ sentiment: z.string(), confidence: z.number().min(0).max(100) });
const tabularAnswer = z.object({
  label: z.union([z.string(), z.number()]),
  probabilities: z.record(z.string(), z.number()),
});

/**
 * Reads a model server's single-item POST /predict answer: the text route's
 * `{sentiment, confidence (percent)}` or the tabular route's `{label, probabilities}`. null if neither.
 */
export function parseAnswer(body: unknown): ShadowAnswer | null {
  const tab = tabularAnswer.safeParse(body);
  if (tab.success) return { label: String(tab.data.label), probabilities: tab.data.probabilities };
  const text = textAnswer.safeParse(body);
  if (text.success) {
    return {
      label: text.data.sentiment,
      probabilities: { [text.data.sentiment]: text.data.confidence / 100 },
    };
  }
  return null;
}
