import * as core from "@actions/core";
import { context } from "@actions/github";
import { runAction, setOutputs, workspaceConfig } from "../../src/action/kit.js";
import { loadGatePolicy } from "../../src/config/load.js";
import { baselineFromHost, resolveBaseline } from "../../src/gate/baseline.js";
import { gateCandidate, verdictJson } from "../../src/gate/gate.js";
import { GATE_COMMENT_MARKER, renderMarkdown } from "../../src/gate/render.js";
import { connectGitHub, currentRunUrl, httpStatus } from "../../src/github/client.js";
import { upsertStickyComment } from "../../src/github/comments.js";
import { getInputs } from "./input-helper.js";

/** gate-on-metrics: inputs → gate verdict → outputs, job summary, sticky PR comment; fails on violation. */
export function run(): Promise<void> {
  return runAction(async () => {
    const inputs = getInputs();
    const policyPath = workspaceConfig(inputs.policy);
    const policy = await loadGatePolicy(policyPath);

    const baseline = inputs["baseline-from-host"]
      ? await baselineFromHost(inputs["state-dir"] ? { stateDir: inputs["state-dir"] } : {})
      : await resolveBaseline({
          baseline: inputs.baseline,
          baselineRelease: inputs["baseline-release"],
          token: inputs["github-token"],
        });
    core.info(baseline.note);

    const outcome = await gateCandidate(inputs.candidate, baseline, policy, {
      evalData: inputs["eval-data"],
      dataset: inputs.dataset,
    });
    const runUrl = currentRunUrl();
    const markdown = renderMarkdown(outcome.verdict, {
      baselineNote: outcome.baselineNote,
      ...(runUrl ? { runUrl } : {}),
      ...(inputs.extra ? { extra: inputs.extra } : {}),
    });
    await core.summary.addRaw(markdown).write();

    let commentUrl: string | undefined;
    const pr = context.payload.pull_request?.number;
    if (inputs.comment && pr !== undefined && inputs["github-token"]) {
      try {
        const gh = connectGitHub({ token: inputs["github-token"] });
        const result = await upsertStickyComment(gh, pr, GATE_COMMENT_MARKER, markdown);
        commentUrl = result.url;
        core.info(`PR comment ${result.action}: ${result.url}`);
      } catch (err) {
        // Fork PRs get a read-only token: the verdict still stands in the summary and outputs.
        if (httpStatus((err as Error).cause) === 403)
          core.warning(`could not comment on #${pr}: ${(err as Error).message}`);
        else throw err;
      }
    }

    setOutputs({
      passed: outcome.verdict.passed,
      verdict: verdictJson(outcome),
      failing: outcome.verdict.failing.join("\n"),
      "comment-url": commentUrl,
    });
    if (!outcome.verdict.passed) {
      const message = `model gate failed: ${outcome.verdict.failing.join("; ")}`;
      if (inputs["fail-on-violation"]) core.setFailed(message);
      else core.warning(message);
    } else {
      core.info(`model gate passed for ${outcome.verdict.candidate.label}`);
    }
  });
}
