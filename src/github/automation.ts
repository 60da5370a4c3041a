import { type GitHub, gitHubError } from "./client.js";

/** Starts a workflow_dispatch run (e.g. retraining when drift is detected). Inputs must be strings. */
export async function dispatchWorkflow(
  gh: GitHub,
  workflow: string,
  ref: string,
  inputs: Record<string, string> = {},
): Promise<void> {
  try {
    await gh.octokit.rest.actions.createWorkflowDispatch({
      owner: gh.owner,
      repo: gh.repo,
      workflow_id: workflow,
      ref,
      inputs,
    });
  } catch (err) {
    throw gitHubError(`dispatching workflow ${workflow} on ${ref}`, err);
  }
}

export interface IssueResult {
  action: "created" | "updated";
  number: number;
  url: string;
}

/**
 * One open issue per concern (found by a hidden marker among open issues with `label`): opened once,
 * its body refreshed afterwards — e.g. a standing "drift detected" issue rather than one per check.
 */
export async function upsertIssue(
  gh: GitHub,
  options: { marker: string; title: string; body: string; label: string },
): Promise<IssueResult> {
  const body = options.body.includes(options.marker) ? options.body : `${options.marker}\n${options.body}`;
  let existing: { number: number } | undefined;
  try {
    const params = {
      owner: gh.owner,
      repo: gh.repo,
      state: "open" as const,
      labels: options.label,
      per_page: 100,
    };
    for await (const page of gh.octokit.paginate.iterator(gh.octokit.rest.issues.listForRepo, params)) {
      existing = page.data.find((i) => !i.pull_request && i.body?.includes(options.marker));
      if (existing) break;
    }
    if (existing) {
      const { data } = await gh.octokit.rest.issues.update({
        owner: gh.owner,
        repo: gh.repo,
        issue_number: existing.number,
        title: options.title,
        body,
      });
      return { action: "updated", number: data.number, url: data.html_url };
    }
    const { data } = await gh.octokit.rest.issues.create({
      owner: gh.owner,
      repo: gh.repo,
      title: options.title,
      body,
      labels: [options.label],
    });
    return { action: "created", number: data.number, url: data.html_url };
  } catch (err) {
    throw gitHubError(`${existing ? "updating" : "opening"} issue "${options.title}"`, err);
  }
}
