import * as core from "@actions/core";
import { flagsFromInputs, runAction, setOutputs, workspaceConfig } from "../../src/action/kit.js";
import { loadDeployConfig } from "../../src/config/load.js";
import { Engine } from "../../src/engine/engine.js";
import { withRunDeployment } from "../../src/github/deployments.js";
import { resolveStateDir } from "../../src/ledger/ledger.js";
import { candidateFromBundle, candidateFromImage } from "../../src/rollout/candidate.js";
import type { DeployOutcome, ShadowFigures } from "../../src/rollout/deploy.js";
import { type RolloutFlags, settingsFromFlags } from "../../src/rollout/options.js";
import { deploy, edgeFailure } from "../../src/rollout/run.js";
import {
  deploymentDescription,
  deploySummaryMarkdown,
  shadowProgressDescription,
} from "../../src/rollout/summary.js";
import { DEPLOY_SETTINGS } from "../../src/settings/rollout.js";
import { ExitCode, UserError } from "../../src/util/errors.js";
import { Reporter } from "../../src/util/progress.js";
import { getInputs } from "./input-helper.js";

/** canary-deploy: inputs → `modelship deploy` (as a GitHub Deployment) → outputs, job summary with timeline. */
export function run(): Promise<void> {
  return runAction(async () => {
    const inputs = getInputs();
    const settings = settingsFromFlags(
      flagsFromInputs<RolloutFlags>(inputs, DEPLOY_SETTINGS),
      await loadDeployConfig(workspaceConfig(inputs.config)),
    );
    const stateDir = resolveStateDir(inputs["state-dir"]);
    // Resolved up front so the GitHub Deployment names the model, not just an image reference.
    const candidate = inputs.image
      ? await candidateFromImage(await Engine.connect(), inputs.image)
      : await candidateFromBundle(inputs.model!);
    let outcome: DeployOutcome | undefined;
    await withRunDeployment(
      {
        token: inputs["github-token"],
        environment: inputs.environment,
        payload: {
          kind: "deploy",
          modelVersion: candidate.version,
          ...(candidate.model ? { modelSha256: candidate.model.sha256 } : {}),
          ...(inputs.image ? { image: inputs.image } : {}),
          ...(candidate.image.digest ? { imageDigest: candidate.image.digest } : {}),
        },
        onWarning: (m) => core.warning(m),
        // The Deployment says how it ended, with the shadow verdict and its figures when there was one.
        describe: () => (outcome ? deploymentDescription(outcome) : undefined),
      },
      async (_deployment, progress) => {
        // The shadow verdict reaches the Deployment as soon as it is known, not only at the end.
        const reporter = new Reporter("human").listen((e) => {
          if (e.type === "shadow")
            progress(shadowProgressDescription(candidate.version, e as unknown as ShadowFigures));
        });
        outcome = await deploy({
          image: inputs.image,
          // An image wins: the bundle is then only the workflow's record of what was built.
          model: inputs.image ? undefined : inputs.model,
          repository: inputs.repository,
          stateDir,
          wait: inputs.wait,
          settings,
          reporter,
        });
        // A failed rollout must mark the GitHub Deployment failed too.
        if (outcome.status === "aborted")
          throw new UserError(`canary ${outcome.version} aborted: ${outcome.reason}`, {
            exitCode: ExitCode.failed,
          });
        const failed = edgeFailure(`deploy of ${outcome.version}`, outcome.edge);
        if (failed) throw failed;
        return outcome;
      },
    ).finally(async () => {
      if (!outcome) return;
      await core.summary.addRaw(deploySummaryMarkdown(outcome)).write();
      setOutputs({
        status: outcome.status,
        version: outcome.version,
        previous: outcome.previous ?? "",
        "edge-url": outcome.edge.url,
        requests: outcome.edge.requests,
        "failed-requests": outcome.edge.failed,
        timeline: outcome.timeline,
      });
    });
  });
}
