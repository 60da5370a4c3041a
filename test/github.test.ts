import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { dispatchWorkflow, upsertIssue } from "../src/github/automation.js";
import { connectGitHub, currentRunUrl, type GitHub } from "../src/github/client.js";
import { upsertStickyComment } from "../src/github/comments.js";
import { trackDeployment, withRunDeployment } from "../src/github/deployments.js";
import { downloadReleaseAsset } from "../src/github/releases.js";
import { callLines, type GitHubRecorder, startGitHubRecorder } from "./support/github-recorder.js";

const MARKER = "<!-- modelship:gate -->";

describe("GitHub REST module against the recorder", () => {
  let rec: GitHubRecorder;
  let gh: GitHub;
  beforeAll(async () => {
    rec = await startGitHubRecorder();
    gh = connectGitHub({ token: "t0ken", repository: "acme/models", apiUrl: rec.url });
  });
  afterAll(() => rec.close());
  beforeEach(() => {
    rec.take();
  });

  it("sticky comment: created once, then edited in place; other comments are left alone", async () => {
    await gh.octokit.rest.issues.createComment({
      owner: "acme",
      repo: "models",
      issue_number: 7,
      body: "LGTM",
    });
    rec.take();
    const first = await upsertStickyComment(gh, 7, MARKER, `${MARKER}\nfirst`);
    const second = await upsertStickyComment(gh, 7, MARKER, "second");
    expect(first.action).toBe("created");
    expect(second).toMatchObject({ action: "updated", id: first.id });
    expect(callLines(rec.calls)).toEqual([
      "GET /repos/acme/models/issues/7/comments",
      "POST /repos/acme/models/issues/7/comments",
      "GET /repos/acme/models/issues/7/comments",
      `PATCH /repos/acme/models/issues/comments/${first.id}`,
    ]);
    expect(rec.calls[0]!.auth).toBe("token t0ken");
    const bodies = rec.state.comments.filter((c) => c.issue === 7).map((c) => c.body);
    expect(bodies).toEqual(["LGTM", `${MARKER}\nsecond`]);
  });

  it("deployment: created with the model payload, statuses in_progress → success with the run link", async () => {
    const logUrl = currentRunUrl({ GITHUB_REPOSITORY: "acme/models", GITHUB_RUN_ID: "42" });
    expect(logUrl).toBe("https://github.com/acme/models/actions/runs/42");
    const payload = {
      kind: "deploy" as const,
      modelVersion: "20261122.031500-ab12cd34",
      modelSha256: "a".repeat(64),
      imageDigest: "sha256:beef",
    };
    const out = await trackDeployment(
      gh,
      { ref: "abc123", environment: "production", payload, logUrl: logUrl! },
      async (d) => d.id,
    );
    expect(callLines(rec.calls)).toEqual([
      "POST /repos/acme/models/deployments",
      `POST /repos/acme/models/deployments/${out}/statuses`,
      `POST /repos/acme/models/deployments/${out}/statuses`,
    ]);
    expect(rec.calls[0]!.body).toMatchObject({
      ref: "abc123",
      environment: "production",
      payload,
      auto_merge: false,
      required_contexts: [],
    });
    expect(rec.calls.slice(1).map((c) => (c.body as { state: string }).state)).toEqual([
      "in_progress",
      "success",
    ]);
    expect(rec.calls[2]!.body).toMatchObject({ log_url: logUrl });
  });

  it("deployment: a failed rollout is marked failure and its error is rethrown unchanged", async () => {
    const err = new Error("canary aborted: 5xx rate 12% > 1%");
    await expect(
      trackDeployment(
        gh,
        { ref: "abc123", environment: "production", payload: { kind: "rollback", modelVersion: "v1" } },
        async () => {
          throw err;
        },
      ),
    ).rejects.toBe(err);
    const states = rec.calls
      .filter((c) => c.path.endsWith("/statuses"))
      .map((c) => c.body as { state: string; description: string });
    expect(states.map((s) => s.state)).toEqual(["in_progress", "failure"]);
    expect(states[1]!.description).toContain("canary aborted");
  });

  it("withRunDeployment: the current commit and run from the Actions environment; no token = just run", async () => {
    const env = {
      GITHUB_REPOSITORY: "acme/models",
      GITHUB_SHA: "c0ffee5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f",
      GITHUB_RUN_ID: "99",
      GITHUB_API_URL: rec.url,
    };
    const payload = {
      kind: "rollback" as const,
      modelVersion: "20261120.000000-11111111",
      reason: "p95 regression",
    };
    const id = await withRunDeployment(
      { token: "t", environment: "production", payload, env },
      async (d) => d?.id,
    );
    expect(typeof id).toBe("number");
    expect(rec.calls[0]!.body).toMatchObject({ ref: env.GITHUB_SHA, task: "deploy:rollback", payload });
    expect(rec.calls.at(-1)!.body).toMatchObject({
      state: "success",
      log_url: "https://github.com/acme/models/actions/runs/99",
    });
    rec.take();
    expect(
      await withRunDeployment({ token: undefined, environment: "production", payload, env }, async (d) => d),
    ).toBeNull();
    expect(rec.calls).toEqual([]);
  });

  it("release asset: downloads the production model.json; null when nothing is published", async () => {
    expect(await downloadReleaseAsset(gh, "model-production", "model.json")).toBeNull();
    rec.addRelease("acme/models", "model-production", { "model.json": '{"version":"x"}' });
    expect(await downloadReleaseAsset(gh, "model-production", "model.json")).toBe('{"version":"x"}');
    expect(await downloadReleaseAsset(gh, "model-production", "other.json")).toBeNull();
  });

  it("issue upsert and workflow dispatch", async () => {
    const a = await upsertIssue(gh, {
      marker: "<!-- modelship:drift -->",
      title: "Drift",
      body: "psi 0.3",
      label: "model-drift",
    });
    const b = await upsertIssue(gh, {
      marker: "<!-- modelship:drift -->",
      title: "Drift (2)",
      body: "psi 0.4",
      label: "model-drift",
    });
    expect([a.action, b.action, b.number]).toEqual(["created", "updated", a.number]);
    await dispatchWorkflow(gh, "deploy.yml", "main", { reason: "drift" });
    expect(rec.state.dispatches).toContainEqual({
      repo: "acme/models",
      workflow: "deploy.yml",
      ref: "main",
      inputs: { reason: "drift" },
    });
  });

  it("API failures become one readable line naming the call and the likely permission", async () => {
    const bad = connectGitHub({ token: "t", repository: "acme/models", apiUrl: `${rec.url}/nowhere` });
    await expect(upsertStickyComment(bad, 1, MARKER, "x")).rejects.toThrow(
      /GitHub API: listing comments on #1 failed \(404: Not Found.*\)/,
    );
    expect(() => connectGitHub({ token: "", repository: "acme/models" })).toThrow(/no GitHub token/);
    expect(() => connectGitHub({ token: "t", repository: "nonsense" })).toThrow(/owner\/repo/);
  });
});
