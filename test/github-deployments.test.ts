import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../src/ledger/ledger.js";
import { freePort } from "../src/rollout/wiring.js";
import { buildActions, runAction } from "./support/action-runner.js";
import { trainedBundle } from "./support/bundle.js";
import { runCli } from "./support/cli.js";
import { callLines, type GitHubRecorder, startGitHubRecorder } from "./support/github-recorder.js";
import { ensureDockerHost, modelImage, testEngine } from "./support/images.js";
import { killDaemonsOf } from "./support/leftovers.js";

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
    await gh?.close();
    // the failing rollback still started the edge for its state dir: stop it even when a test failed
    if (dir) await killDaemonsOf(dir);
    if (dir) await rm(dir, { recursive: true, force: true });
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

/** The real CLI; resolves with the exit code. */
const cli = async (args: string[]) => {
  const r = await runCli(args);
  return { code: r.code, out: r.stdout + r.stderr };
};

/** Same weights, another release: what a retrain that changed nothing would ship. */
async function release(src: string, stamp: string, into: string): Promise<string> {
  const card = JSON.parse(await readFile(join(src, "model.json"), "utf8"));
  const version = `${stamp}-${card.model.sha256.slice(0, 8)}`;
  const dir = join(into, `${card.name}-${version}`);
  await cp(src, dir, { recursive: true });
  await writeFile(join(dir, "model.json"), `${JSON.stringify({ ...card, version }, null, 2)}\n`);
  return dir;
}

describe("rollback action on a real host: the Deployment ends success", () => {
  let dir: string;
  let dist: string;
  let stateDir: string;
  let gh: GitHubRecorder;
  const versions: string[] = [];

  beforeAll(async () => {
    ensureDockerHost();
    dir = await mkdtemp(join(tmpdir(), "mstest-gh-host-"));
    dist = await buildActions(join(dir, "dist"), "rollback");
    gh = await startGitHubRecorder();
    const good = await trainedBundle();
    stateDir = join(dir, "state");
    const init = await cli([
      "host",
      "init",
      "--state-dir",
      stateDir,
      "--edge-port",
      String(await freePort()),
      "--metrics-port",
      String(await freePort()),
    ]);
    expect(init.code, init.out).toBe(0);
    // Two releases of the real model (repositories shared with the acceptance test's image cache).
    for (const [stamp, repo] of [
      ["20260101.000001", "mstest-acc-v1"],
      ["20260101.000002", "mstest-acc-v2"],
    ] as const) {
      const bundle = await release(good, stamp, dir);
      const image = await modelImage(bundle, { repository: repo });
      const common = ["--state-dir", stateDir, "--name-prefix", "mstest-ghd-", "--fast", "--allow-no-data"];
      const r = await cli(["deploy", "--image", image.ref, "--steps", "100", ...common]);
      expect(r.code, r.out).toBe(0);
      versions.push(JSON.parse(await readFile(join(bundle, "model.json"), "utf8")).version);
    }
  }, 900_000);

  afterAll(async () => {
    await gh?.close();
    if (stateDir) {
      const engine = await testEngine();
      for (const c of await engine.listContainers({ labels: { "dev.modelship.state-dir": stateDir } }))
        await engine.remove(c.id, { force: true }).catch(() => {});
      await killDaemonsOf(stateDir);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("warm rollback: created → in_progress → success, outputs set, ledger shows the old version stable", async () => {
    const r = await runAction("rollback", {
      inputs: { reason: "drill", "state-dir": stateDir },
      event: "workflow_dispatch",
      github: gh,
      distRoot: dist,
    });
    expect(r.errors).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(r.outputs).toMatchObject({ version: versions[0], from: versions[1], mode: "warm" });
    const id = gh.state.deployments.at(-1)!.id;
    expect(callLines(r.calls)).toEqual([
      "POST /repos/acme/models/deployments",
      `POST /repos/acme/models/deployments/${id}/statuses`,
      `POST /repos/acme/models/deployments/${id}/statuses`,
    ]);
    expect(r.calls.slice(1).map((c) => (c.body as { state: string }).state)).toEqual([
      "in_progress",
      "success",
    ]);
    const stable = (await new Ledger(stateDir).read()).versions.find((v) => v.role === "stable");
    expect(stable?.version).toBe(versions[0]);
  });
});
