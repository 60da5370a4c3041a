import { type GitHub, gitHubError } from "./client.js";

export interface StickyCommentResult {
  action: "created" | "updated";
  id: number;
  url: string;
}

/**
 * One comment per PR/issue, found by a hidden HTML marker in its body: created the first time,
 * edited in place afterwards, so a PR keeps a single up-to-date report instead of a pile of them.
 */
export async function upsertStickyComment(
  gh: GitHub,
  issueNumber: number,
  marker: string,
  body: string,
): Promise<StickyCommentResult> {
  const text = body.includes(marker) ? body : `${marker}\n${body}`;
  const params = { owner: gh.owner, repo: gh.repo, issue_number: issueNumber, per_page: 100 };
  let existing: { id: number } | undefined;
  try {
    for await (const page of gh.octokit.paginate.iterator(gh.octokit.rest.issues.listComments, params)) {
      existing = page.data.find((c) => c.body?.includes(marker));
      if (existing) break;
    }
  } catch (err) {
    throw gitHubError(`listing comments on #${issueNumber}`, err);
  }
  try {
    if (existing) {
      const { data } = await gh.octokit.rest.issues.updateComment({
        owner: gh.owner,
        repo: gh.repo,
        comment_id: existing.id,
        body: text,
      });
      return { action: "updated", id: data.id, url: data.html_url };
    }
    const { data } = await gh.octokit.rest.issues.createComment({
      owner: gh.owner,
      repo: gh.repo,
      issue_number: issueNumber,
      body: text,
    });
    return { action: "created", id: data.id, url: data.html_url };
  } catch (err) {
    throw gitHubError(`${existing ? "updating" : "creating"} the comment on #${issueNumber}`, err);
  }
}
