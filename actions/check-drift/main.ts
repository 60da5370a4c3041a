import * as core from "@actions/core";
import { runAction, setOutputs, workspaceConfig } from "../../src/action/kit.js";
import { loadDriftPolicy } from "../../src/config/load.js";
import { markRetrainRequested, renderDriftMarkdown, runDriftCheck } from "../../src/drift/check.js";
import { dispatchWorkflow, upsertIssue } from "../../src/github/automation.js";
import { connectGitHub, currentRunUrl } from "../../src/github/client.js";
import { UserError } from "../../src/util/errors.js";
import { getInputs } from "./input-helper.js";

export const DRIFT_ISSUE_MARKER = "<!-- modelship:drift-issue -->";

/** check-drift: drift window → policy → job summary; confirmed drift → retraining dispatch + one issue. */
export function run(): Promise<void> {
  return runAction(async () => {
    const inputs = getInputs();
    const policyPath = workspaceConfig(inputs.policy);
    const check = await runDriftCheck({
      url: inputs.url,
      log: inputs.log,
      model: inputs.model,
      policy: policyPath,
      stateDir: inputs["state-dir"],
    });
    const runUrl = currentRunUrl();
    const markdown = renderDriftMarkdown(check, runUrl ? { runUrl } : {});
    await core.summary.addRaw(markdown).write();

    let dispatched = false;
    let issueUrl: string | undefined;
    if (check.confirmed) {
      const token = inputs["github-token"];
      if (!token)
        throw new UserError("drift confirmed but no github-token to dispatch retraining and open the issue");
      const gh = connectGitHub({ token });
      const policy = await loadDriftPolicy(policyPath);
      const workflow = inputs["retrain-workflow"] ?? policy.retrain.workflow;
      const { name, version } = check.report.model;
      let retrainLine = `Retraining was already requested for ${version}; waiting for a new model to serve.`;
      if (check.retrain) {
        const ref =
          inputs.ref ??
          process.env.GITHUB_REF_NAME ??
          process.env.GITHUB_REF?.replace(/^refs\/heads\//, "") ??
          "main";
        const reason = `retrain: drift confirmed for ${name} ${version} (${check.over.join(", ")})`;
        await dispatchWorkflow(gh, workflow, ref, { reason });
        await markRetrainRequested(check);
        dispatched = true;
        retrainLine = `Retraining requested: dispatched \`${workflow}\` on \`${ref}\`.`;
        core.info(retrainLine);
      }
      const issue = await upsertIssue(gh, {
        marker: DRIFT_ISSUE_MARKER,
        title: `Model drift confirmed: ${name} ${version}`,
        body: `${markdown}\n${retrainLine}\n`,
        label: inputs["issue-label"],
      });
      issueUrl = issue.url;
      core.info(`drift issue ${issue.action}: ${issue.url}`);
      core.warning(`drift confirmed for ${name} ${version}: ${check.over.join(", ")}`);
    } else if (check.report.drift) {
      core.info(`drift in this window (${check.consecutive}/${check.sustain} checks to confirm)`);
    } else {
      core.info("no drift");
    }

    setOutputs({
      drift: check.report.drift,
      confirmed: check.confirmed,
      consecutive: check.consecutive,
      "retrain-dispatched": dispatched,
      "issue-url": issueUrl,
      report: check.report,
    });
  });
}
