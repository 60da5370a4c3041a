import type { GatePolicy } from "../config/gate.js";
import type { Baseline } from "./baseline.js";
import { loadCard } from "./card.js";
import { checkGoldenParity } from "./golden.js";
import { evaluateGate, type Verdict } from "./verdict.js";

export interface GateOutcome {
  verdict: Verdict;
  /** How the baseline was found, or why there is none (first deploy). */
  baselineNote: string;
}

/** Loads the candidate bundle, re-runs its golden examples when the policy asks, and judges it. */
export async function gateCandidate(
  candidatePath: string,
  baseline: Baseline,
  policy: GatePolicy,
): Promise<GateOutcome> {
  const candidate = await loadCard(candidatePath, "candidate");
  const golden = policy.goldenParity
    ? await checkGoldenParity(candidate.bundleDir, candidate.card, policy.goldenTolerance)
    : undefined;
  const verdict = evaluateGate(
    { card: candidate.card, source: candidate.source },
    baseline.subject,
    policy,
    golden,
  );
  return { verdict, baselineNote: baseline.note };
}

/** The JSON shape printed by `modelship gate --json` and set as the action's `verdict` output. */
export function verdictJson(outcome: GateOutcome): Record<string, unknown> {
  const { verdict } = outcome;
  return {
    passed: verdict.passed,
    candidate: verdict.candidate,
    baseline: verdict.baseline,
    baselineNote: outcome.baselineNote,
    failing: verdict.failing,
    rows: verdict.rows,
  };
}
