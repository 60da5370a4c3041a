import type { GatePolicy } from "../config/gate.js";
import type { Baseline } from "./baseline.js";
import { loadCard } from "./card.js";
import { checkGoldenParity } from "./golden.js";
import { type Comparison, comparePaired, type EvaluationOptions, unpaired } from "./paired.js";
import { evaluateGate, type Verdict } from "./verdict.js";

export interface GateOutcome {
  verdict: Verdict;
  /** How the baseline was found, or why there is none (first deploy). */
  baselineNote: string;
}

/**
 * Loads the candidate bundle, re-runs its golden examples when the policy asks, scores candidate and
 * production model on the same rows when both model.onnx files are at hand, and judges it.
 */
export async function gateCandidate(
  candidatePath: string,
  baseline: Baseline,
  policy: GatePolicy,
  evaluation: EvaluationOptions = {},
): Promise<GateOutcome> {
  const candidate = await loadCard(candidatePath, "candidate");
  const golden = policy.goldenParity
    ? await checkGoldenParity(candidate.bundleDir, candidate.card, policy.goldenTolerance)
    : undefined;
  let comparison: Comparison | undefined;
  const base = baseline.subject;
  if (base) {
    if (!candidate.bundleDir) comparison = unpaired("no model.onnx next to the candidate's model.json");
    else if (!base.bundleDir)
      comparison = unpaired(
        `only the production model's card is available (${base.source}), not its model.onnx`,
      );
    else
      comparison = await comparePaired(
        { card: candidate.card, bundleDir: candidate.bundleDir },
        { card: base.card, bundleDir: base.bundleDir },
        policy,
        evaluation,
      );
  }
  const verdict = evaluateGate(
    { card: candidate.card, source: candidate.source },
    base,
    policy,
    golden,
    comparison,
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
    comparison: verdict.comparison,
    failing: verdict.failing,
    rows: verdict.rows,
  };
}
