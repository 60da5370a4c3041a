import type { CheckStatus } from "../analysis/analysis.js";

/**
 * The canary state machine, Flagger style: after each analysis interval the rollout advances to the
 * next weight, extends the step (not enough data), repeats it (a failure below the threshold), promotes
 * (next weight would be 100) or aborts. Pure, so every path is unit-tested.
 */
export type Phase =
  | { kind: "analyse"; step: number; attempt: number; failures: number; extensions: number }
  | { kind: "promote" }
  | { kind: "abort"; reason: string };

export interface MachineSettings {
  steps: number[];
  maxExtensions: number;
  failureThreshold: number;
}

/** Steps analysed under canary traffic: every weight below 100 (100 itself is the promotion). */
export function analysedSteps(steps: number[]): number[] {
  const below = steps.filter((w) => w < 100);
  return below;
}

export function initialPhase(settings: MachineSettings): Phase {
  return analysedSteps(settings.steps).length === 0
    ? { kind: "promote" }
    : { kind: "analyse", step: 0, attempt: 0, failures: 0, extensions: 0 };
}

export function decide(
  phase: Extract<Phase, { kind: "analyse" }>,
  verdict: CheckStatus,
  explanation: string,
  settings: MachineSettings,
): Phase {
  const steps = analysedSteps(settings.steps);
  if (verdict === "pass") {
    return phase.step + 1 < steps.length
      ? { kind: "analyse", step: phase.step + 1, attempt: 0, failures: 0, extensions: 0 }
      : { kind: "promote" };
  }
  if (verdict === "inconclusive") {
    if (phase.extensions >= settings.maxExtensions) {
      return {
        kind: "abort",
        reason: `not enough data to judge the canary at ${steps[phase.step]}% after ${phase.extensions + 1} intervals (${explanation}); never promoting blind — send traffic, lengthen --interval, or pass --allow-no-data`,
      };
    }
    return { ...phase, attempt: phase.attempt + 1, extensions: phase.extensions + 1 };
  }
  const failures = phase.failures + 1;
  if (failures >= settings.failureThreshold) {
    return { kind: "abort", reason: `analysis failed at ${steps[phase.step]}%: ${explanation}` };
  }
  return { ...phase, attempt: phase.attempt + 1, failures };
}
