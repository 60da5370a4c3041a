import * as core from "@actions/core";
import { flagsFromInputs, runAction, setOutputs } from "../../src/action/kit.js";
import { withRunDeployment } from "../../src/github/deployments.js";
import { resolveStateDir } from "../../src/ledger/ledger.js";
import { type RolloutFlags, settingsFromFlags } from "../../src/rollout/options.js";
import type { RollbackOutcome } from "../../src/rollout/rollback.js";
import { edgeFailure, rollback } from "../../src/rollout/run.js";
import { rollbackSummaryMarkdown } from "../../src/rollout/summary.js";
import { ROLLBACK_SETTINGS } from "../../src/settings/rollout.js";
import { Reporter } from "../../src/util/progress.js";
import { getInputs } from "./input-helper.js";

/** rollback: inputs → `modelship rollback` (as a GitHub Deployment) → outputs and job summary. */
export function run(): Promise<void> {
  return runAction(async () => {
    const inputs = getInputs();
    let outcome: RollbackOutcome | undefined;
    await withRunDeployment(
      {
        token: inputs["github-token"],
        environment: inputs.environment,
        payload: { kind: "rollback", modelVersion: inputs.version ?? "previous", reason: inputs.reason },
        onWarning: (m) => core.warning(m),
      },
      async () => {
        outcome = await rollback({
          to: inputs.version,
          reason: inputs.reason,
          by: inputs.by ?? process.env.GITHUB_ACTOR,
          stateDir: resolveStateDir(inputs["state-dir"]),
          wait: inputs.wait,
          settings: settingsFromFlags(flagsFromInputs<RolloutFlags>(inputs, ROLLBACK_SETTINGS)),
          reporter: new Reporter("human"),
        });
        const failed = edgeFailure(`rollback to ${outcome.version}`, outcome.edge);
        if (failed) throw failed;
        return outcome;
      },
    );
    if (!outcome) return;
    await core.summary.addRaw(rollbackSummaryMarkdown(outcome)).write();
    setOutputs({
      version: outcome.version,
      from: outcome.from,
      mode: outcome.mode,
      "switch-ms": Math.round(outcome.switchMs),
      "edge-url": outcome.edge.url,
    });
  });
}
