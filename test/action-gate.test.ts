import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildActions, runAction } from "./support/action-runner.js";
import { trainedBundle } from "./support/bundle.js";
import { callLines, type GitHubRecorder, startGitHubRecorder } from "./support/github-recorder.js";

/** A model.json as the trainer writes it, reduced to what the gate reads (no model.onnx: parity off). */
function modelJson(version: string, accuracy: number, positiveF1: number) {
  return JSON.stringify({
    schemaVersion: 1,
    name: "sentiment",
    version,
    io: { labels: ["negative", "positive"] },
    metrics: {
      accuracy,
      macroF1: (0.95 + positiveF1) / 2,
      rocAuc: 0.965,
      classes: {
        negative: { precision: 0.95, recall: 0.95, f1: 0.95, support: 1836 },
        positive: { precision: positiveF1, recall: positiveF1, f1: positiveF1, support: 473 },
      },
      confusionMatrix: {
        labels: ["negative", "positive"],
        matrix: [
          [1770, 66],
          [98, 375],
        ],
      },
      testRows: 2309,
    },
    runtime: {
      onnxruntimeVersion: "1.30.0",
      fileSizeBytes: 3_900_000,
      loadMs: 85,
      singleRowP50Ms: 0.3,
      singleRowP95Ms: 0.6,
      batch64RowsPerSec: 41000,
    },
  });
}

describe("gate-on-metrics action, run like the runner runs it", () => {
  let dir: string;
  let dist: string;
  let gh: GitHubRecorder;
  const paths = { good: "", bad: "", baseline: "", policy: "" };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mstest-action-gate-"));
    dist = await buildActions(join(dir, "dist"), "gate-on-metrics");
    gh = await startGitHubRecorder();
    for (const [key, body] of [
      ["good", modelJson("20261122.031500-ab12cd34", 0.921, 0.82)],
      ["bad", modelJson("20261122.040000-cd34ef56", 0.905, 0.78)],
      ["baseline", modelJson("20261120.100000-00aa11bb", 0.918, 0.81)],
    ] as const) {
      await mkdir(join(dir, key));
      await writeFile(join(dir, key, "model.json"), body);
      paths[key] = join(dir, key);
    }
    paths.policy = join(dir, "policy.yaml");
    await writeFile(
      paths.policy,
      "minimum:\n  accuracy: 0.9\n  classF1: {positive: 0.75}\ngoldenParity: false\n",
    );
  });
  afterAll(async () => {
    await gh.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("on a PR: passes, sets outputs, writes the summary and creates one sticky comment; a rerun updates it", async () => {
    const inputs = {
      candidate: paths.good,
      baseline: paths.baseline,
      policy: paths.policy,
      extra: "**Image** (not pushed): ✅ built, golden smoke test passed",
    };
    const first = await runAction("gate-on-metrics", {
      inputs,
      event: "pull_request",
      github: gh,
      distRoot: dist,
    });
    expect(first.errors).toEqual([]);
    expect(first.exitCode).toBe(0);
    expect(first.outputs.passed).toBe("true");
    const verdict = JSON.parse(first.outputs.verdict!);
    expect(verdict.baseline.version).toBe("20261120.100000-00aa11bb");
    expect(verdict.rows.map((r: { rule: string }) => r.rule)).toContain("maxDrop.classF1[positive]");
    expect(first.summary).toContain("<!-- modelship:gate -->");
    expect(first.summary).toContain("| ✅ | accuracy | 0.9210 | 0.9180 | +0.0030 |");
    expect(first.summary).toContain("```mermaid");
    expect(first.summary).toContain("\n**Image** (not pushed): ✅ built, golden smoke test passed\n");
    expect(first.summary).toContain(
      "[workflow run](https://github.com/acme/models/actions/runs/4242/attempts/1)",
    );
    expect(callLines(first.calls)).toEqual([
      "GET /repos/acme/models/issues/7/comments",
      "POST /repos/acme/models/issues/7/comments",
    ]);
    expect(first.calls[1]!.auth).toBe("token ghs_testtoken");
    const id = gh.state.comments[0]!.id;
    expect(first.outputs["comment-url"]).toBe(`https://github.com/acme/models/pull/7#issuecomment-${id}`);

    const second = await runAction("gate-on-metrics", {
      inputs,
      event: "pull_request",
      github: gh,
      distRoot: dist,
    });
    expect(second.exitCode).toBe(0);
    expect(callLines(second.calls)).toEqual([
      "GET /repos/acme/models/issues/7/comments",
      `PATCH /repos/acme/models/issues/comments/${id}`,
    ]);
    expect(gh.state.comments).toHaveLength(1);
  });

  it("a failing gate exits non-zero, names the failing rules, and still updates the same comment", async () => {
    const r = await runAction("gate-on-metrics", {
      inputs: { candidate: paths.bad, baseline: paths.baseline, policy: paths.policy },
      event: "pull_request",
      github: gh,
      distRoot: dist,
    });
    expect(r.exitCode).toBe(1);
    expect(r.outputs.passed).toBe("false");
    expect(r.outputs.failing!.split("\n").map((l) => l.split(":")[0])).toEqual([
      "maxDrop.accuracy",
      "maxDrop.macroF1",
      "maxDrop.classF1[positive]",
    ]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(
      /^model gate failed: maxDrop\.accuracy: accuracy 0\.9050 vs baseline 0\.9180/,
    );
    expect(r.summary).toContain("Model gate failed");
    expect(r.summary).toContain("**3 failing rules:**");
    expect(callLines(r.calls)[1]).toMatch(/^PATCH \/repos\/acme\/models\/issues\/comments\/\d+$/);
    expect(gh.state.comments).toHaveLength(1);
    expect(gh.state.comments[0]!.body).toContain("Model gate failed");
  });

  it("a fork PR's read-only token: the comment is refused (403), the verdict still stands", async () => {
    const fork = await startGitHubRecorder();
    fork.failWith("POST", /\/issues\/\d+\/comments$/, 403);
    try {
      const r = await runAction("gate-on-metrics", {
        inputs: { candidate: paths.good, baseline: paths.baseline, policy: paths.policy },
        event: "pull_request",
        github: fork,
        distRoot: dist,
      });
      expect(r.exitCode).toBe(0);
      expect(r.outputs.passed).toBe("true");
      expect(r.outputs["comment-url"]).toBeUndefined();
      expect(r.warnings).toHaveLength(1);
      expect(r.warnings[0]).toMatch(
        /^could not comment on #7: GitHub API: creating the comment on #7 failed \(403: Resource not accessible/,
      );
      expect(r.summary).toContain("Model gate passed");
    } finally {
      await fork.close();
    }
  });

  it("on push: baseline from the published release asset, no comment; none published = first deploy", async () => {
    const firstDeploy = await runAction("gate-on-metrics", {
      inputs: { candidate: paths.good, "baseline-release": "model-production", policy: paths.policy },
      event: "push",
      github: gh,
      distRoot: dist,
    });
    expect(firstDeploy.exitCode).toBe(0);
    expect(firstDeploy.summary).toContain("first deploy — only absolute rules apply");
    expect(JSON.parse(firstDeploy.outputs.verdict!).baseline).toBeNull();

    gh.addRelease("acme/models", "model-production", {
      "model.json": modelJson("20261120.100000-00aa11bb", 0.93, 0.81),
    });
    const r = await runAction("gate-on-metrics", {
      inputs: { candidate: paths.good, "baseline-release": "model-production", policy: paths.policy },
      event: "push",
      github: gh,
      distRoot: dist,
    });
    expect(callLines(r.calls)).toEqual([
      "GET /repos/acme/models/releases/tags/model-production",
      expect.stringMatching(/^GET \/repos\/acme\/models\/releases\/assets\/\d+$/),
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.outputs.failing).toContain("maxDrop.accuracy: accuracy 0.9210 vs baseline 0.9300");
  });

  it("release with the bundle archive: production is scored on the candidate's rows (paired)", async () => {
    const bundle = await trainedBundle();
    const archive = join(dir, "model-bundle.tar.gz");
    await promisify(execFile)("tar", ["-czf", archive, "-C", bundle, "."]);
    gh.addRelease("acme/models", "model-production-bundle", {
      "model.json": await readFile(join(bundle, "model.json"), "utf8"),
      "model-bundle.tar.gz": await readFile(archive),
    });
    const r = await runAction("gate-on-metrics", {
      inputs: { candidate: bundle, "baseline-release": "model-production-bundle", policy: "/dev/null" },
      event: "push",
      github: gh,
      distRoot: dist,
    });
    expect(r.errors).toEqual([]);
    expect(callLines(r.calls)).toEqual([
      "GET /repos/acme/models/releases/tags/model-production-bundle",
      expect.stringMatching(/^GET \/repos\/acme\/models\/releases\/assets\/\d+$/),
    ]);
    expect(r.exitCode).toBe(0);
    const verdict = JSON.parse(r.outputs.verdict!);
    expect(verdict.comparison.mode).toBe("paired");
    expect(verdict.comparison.evaluation.rows).toBeGreaterThan(2000);
    expect(verdict.comparison.accuracy).toMatchObject({ candidateOnly: 0, baselineOnly: 0, pValue: 1 });
    expect(r.summary).toContain("**Paired:** both models scored on the same");
    expect(r.summary).toContain("### Where the models differ");
  });

  it("bad input: one readable error line, exit 1, no stack trace, no API calls", async () => {
    const r = await runAction("gate-on-metrics", {
      inputs: { "baseline-from-host": "maybe" },
      event: "pull_request",
      github: gh,
      distRoot: dist,
    });
    expect(r.exitCode).toBe(1);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/input 'candidate'.*; input 'baseline-from-host': expected true or false/);
    expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
    expect(r.calls).toEqual([]);

    const missing = await runAction("gate-on-metrics", {
      inputs: { candidate: join(dir, "nope"), policy: paths.policy },
      distRoot: dist,
    });
    expect(missing.errors).toEqual([
      `candidate ${join(dir, "nope")} does not exist — pass a bundle directory or model.json`,
    ]);
  });

  it("golden parity under the bundled action: onnxruntime-node comes from the workspace, not the bundle", async () => {
    const bundle = await trainedBundle();
    // The fresh build lives in a temp dir outside the repository, like a `uses: owner/repo/...` checkout.
    const ok = await runAction("gate-on-metrics", {
      inputs: { candidate: bundle, policy: "/dev/null" },
      distRoot: dist,
    });
    expect(ok.errors).toEqual([]);
    expect(ok.exitCode).toBe(0);
    const parity = JSON.parse(ok.outputs.verdict!).rows.find(
      (r: { rule: string }) => r.rule === "goldenParity",
    );
    expect(parity).toMatchObject({
      status: "pass",
      metric: expect.stringMatching(/^golden parity \(\d+ examples/),
    });

    // A workspace without `npm ci`: the parity rule fails and says what to do.
    const empty = join(dir, "empty-workspace");
    await mkdir(empty);
    const bare = await runAction("gate-on-metrics", {
      inputs: { candidate: bundle, policy: "/dev/null" },
      distRoot: dist,
      workspace: empty,
    });
    expect(bare.exitCode).toBe(1);
    expect(bare.outputs.failing).toBe(
      `goldenParity: onnxruntime-node is not installed in the workspace (${empty}): run \`npm ci\` (or \`npm install onnxruntime-node\`) in a step before this action`,
    );
  });
});
