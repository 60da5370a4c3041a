import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildActions, runAction } from "./support/action-runner.js";
import { callLines, type GitHubRecorder, startGitHubRecorder } from "./support/github-recorder.js";
import { ensureDockerHost } from "./support/images.js";

/**
 * The rollback action run like the runner runs it (workflow_dispatch payload, INPUT_*, GITHUB_API_URL at
 * the recorder) on a host with nothing deployed: the rollback must fail, and the GitHub Deployment it
 * opened must end `failure` with the reason and a link to the run — the exact REST calls, in order.
 * (The success path on a real host is covered in-process in github.test.ts and by the rollout tests.)
 */
describe("rollback action records a GitHub Deployment", () => {
  let dir: string;
  let dist: string;
  let gh: GitHubRecorder;
  beforeAll(async () => {
    ensureDockerHost(); // the engine is reachable, so the failure is the empty ledger's
    dir = await mkdtemp(join(tmpdir(), "mstest-gh-deploy-"));
    dist = await buildActions(join(dir, "dist"), "rollback");
    gh = await startGitHubRecorder();
  });
  afterAll(async () => {
    await gh.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("created → in_progress → failure (with the reason and the run link) when there is nothing to roll back to", async () => {
    const r = await runAction("rollback", {
      inputs: {
        reason: "p95 latency regression reported by on-call",
        "state-dir": join(dir, "state"),
        wait: "false",
      },
      event: "workflow_dispatch",
      github: gh,
      distRoot: dist,
    });
    expect(r.exitCode).toBe(1);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^nothing is deployed: there is no stable version to roll back from/);
    const id = gh.state.deployments[0]?.id;
    expect(callLines(r.calls)).toEqual([
      "POST /repos/acme/models/deployments",
      `POST /repos/acme/models/deployments/${id}/statuses`,
      `POST /repos/acme/models/deployments/${id}/statuses`,
    ]);
    expect(r.calls[0]!.auth).toBe("token ghs_testtoken");
    expect(r.calls[0]!.body).toMatchObject({
      environment: "production",
      task: "deploy:rollback",
      auto_merge: false,
      required_contexts: [],
      payload: {
        kind: "rollback",
        modelVersion: "previous",
        reason: "p95 latency regression reported by on-call",
      },
    });
    const statuses = r.calls.slice(1).map((c) => c.body as Record<string, string>);
    expect(statuses.map((s) => s.state)).toEqual(["in_progress", "failure"]);
    for (const s of statuses)
      expect(s.log_url).toBe("https://github.com/acme/models/actions/runs/4242/attempts/1");
    // The Deployment says why, in the same words as the step's error.
    expect(r.errors[0]).toContain(statuses[1]!.description!.slice(0, 40));
  });
});
