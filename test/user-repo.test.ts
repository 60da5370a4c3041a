import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runtimeKey } from "../src/action/runtime.js";
import { freePort } from "../src/rollout/wiring.js";
import { type ActionRun, runAction } from "./support/action-runner.js";
import { trainedBundle } from "./support/bundle.js";
import { dataPath, repoRoot } from "./support/data.js";
import { baseImage, modelImage, testEngine } from "./support/images.js";
import { killDaemonsOf } from "./support/leftovers.js";

/**
 * A user's repository that is not a Node project (a Python-style model repo: modelship.yaml, an
 * evaluation CSV, a train.py stand-in, no package.json) uses the actions as
 * `uses: modelship/modelship/actions/<name>@v1`. Like the runner, the test puts the action repository's
 * files in a separate `_actions/modelship/modelship/v1/` folder — a copy of this checkout's files without
 * its node_modules, outside this checkout so nothing of ours is reachable by walking up — and runs each
 * bundle there with GITHUB_WORKSPACE = the user repository. The actions must install what they need
 * themselves (src/action/runtime.ts) into the tool cache.
 */

const run = promisify(execFile);
/** Content-keyed like a runner's tool cache, so later runs of the suite are warm. */
const toolCache = join(tmpdir(), "modelship-test-toolcache");

let tmp: string;
let actionRoot: string;
let userRepo: string;
let stateDir = "";
const images: string[] = [];

/** The repository's own CLI (host set-up is not an action: it runs once on the host). */
async function cli(args: string[]): Promise<void> {
  await run("node", [join(repoRoot, "bin", "modelship.js"), ...args], { cwd: repoRoot, timeout: 300_000 });
}

async function copyCheckout(to: string): Promise<void> {
  const { stdout } = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const rel of stdout.split("\0").filter(Boolean)) {
    if (!existsSync(join(repoRoot, rel))) continue; // deleted in the working tree
    await mkdir(dirname(join(to, rel)), { recursive: true });
    await copyFile(join(repoRoot, rel), join(to, rel));
  }
}

function action(name: string, inputs: Record<string, string>, timeoutMs = 600_000): Promise<ActionRun> {
  return runAction(name, {
    inputs,
    workspace: userRepo,
    distRoot: join(actionRoot, "actions"),
    timeoutMs,
    env: { MODELSHIP_APP_ROOT: "", NODE_PATH: "", RUNNER_TOOL_CACHE: toolCache },
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "mstest-userrepo-"));
  actionRoot = join(tmp, "_actions", "OWNER", "modelship", "v1");
  await copyCheckout(actionRoot);
  userRepo = join(tmp, "workspace", "sentiment-model");
  await mkdir(userRepo, { recursive: true });
  await writeFile(join(userRepo, "train.py"), "# the user's own trainer would write model.onnx here\n");
  await writeFile(
    join(userRepo, "modelship.yaml"),
    [
      "train:",
      `  data: ${dataPath()}`,
      "  labels: [negative, positive]",
      "  name: sentiment",
      "  params:",
      "    cvFolds: 2",
      "gate:",
      "  minimum:",
      "    accuracy: 0.85",
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  if (stateDir) {
    const engine = await testEngine();
    for (const c of await engine.listContainers({ labels: { "dev.modelship.state-dir": stateDir } }))
      await engine.remove(c.id, { force: true }).catch(() => {});
    await killDaemonsOf(stateDir);
  }
  if (images.length > 0) {
    const engine = await testEngine();
    for (const image of images) await engine.removeImage(image, { force: true }).catch(() => {});
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("the actions, used from a repository with no Node project", () => {
  let bundle = "";

  it("the action checkout has no node_modules and nothing above it has either", () => {
    expect(existsSync(join(actionRoot, "node_modules"))).toBe(false);
    expect(existsSync(join(actionRoot, "dist"))).toBe(false);
    expect(existsSync(join(userRepo, "package.json"))).toBe(false);
    for (let dir = dirname(actionRoot); dir !== dirname(dir); dir = dirname(dir))
      expect(existsSync(join(dir, "node_modules")), dir).toBe(false);
  });

  it("train-and-validate installs its runtime into the tool cache and trains", async () => {
    const r = await action("train-and-validate", {});
    expect(r.errors, r.stderr).toEqual([]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.outputs.passed).toBe("true");
    bundle = r.outputs.bundle ?? "";
    expect(bundle.startsWith(join(userRepo, "models", "sentiment-"))).toBe(true);
    expect(r.summary).toContain("accuracy");
    // the runtime came from the tool cache, keyed by the pinned checkout's content
    const key = runtimeKey(actionRoot);
    expect(existsSync(join(toolCache, "modelship", key, ".modelship-ready"))).toBe(true);
    expect(await readdir(join(toolCache, "modelship"))).toContain(key);
  }, 700_000);

  it("gate-on-metrics scores the candidate (onnxruntime from the installed runtime)", async () => {
    const r = await action("gate-on-metrics", {
      candidate: bundle,
      "eval-data": dataPath(),
      comment: "false",
    });
    expect(r.errors, r.stderr).toEqual([]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.outputs.passed).toBe("true");
    expect(r.stderr).not.toContain("installing the action's runtime");
  }, 600_000);

  it("build-image builds and smoke-tests the image from the installed runtime's server", async () => {
    const base = await baseImage();
    const repository = `mstest-userrepo/m${Math.random().toString(16).slice(2, 10)}`;
    const r = await action("build-image", { bundle, repository, "base-image": base });
    images.push(...(r.outputs.tags?.split("\n").filter(Boolean) ?? []));
    expect(r.errors, r.stderr).toEqual([]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.outputs.image?.startsWith(`${repository}:`)).toBe(true);
    expect(await (await testEngine()).inspectImage(r.outputs.image ?? "")).not.toBeNull();
  }, 600_000);

  it("canary-deploy promotes the image on a real host, rollback returns to the previous version", async () => {
    expect(images.length).toBeGreaterThan(0);
    stateDir = join(tmp, "state");
    await cli([
      "host",
      "init",
      "--state-dir",
      stateDir,
      "--edge-port",
      String(await freePort()),
      "--metrics-port",
      String(await freePort()),
    ]);
    // what production ran before: another release of the real model, deployed with the CLI
    const before = await modelImage(await trainedBundle(), { repository: "mstest-acc-v1" });
    await cli([
      "deploy",
      "--image",
      before.ref,
      "--state-dir",
      stateDir,
      "--steps",
      "100",
      "--fast",
      "--allow-no-data",
    ]);
    const image = images.find((t) => !t.includes(":sha-")) ?? images[0]!;
    const deploy = await action("canary-deploy", {
      image,
      "state-dir": stateDir,
      steps: "50,100",
      fast: "true",
      "allow-no-data": "true",
      environment: "",
      "github-token": "",
    });
    expect(deploy.errors, deploy.stderr).toEqual([]);
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    expect(deploy.outputs.status).toBe("promoted");
    const back = await action("rollback", {
      reason: "user-repo drill",
      "state-dir": stateDir,
      environment: "",
      "github-token": "",
    });
    expect(back.errors, back.stderr).toEqual([]);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(back.outputs.from).toBe(deploy.outputs.version);
    expect(back.outputs.version).toBe(deploy.outputs.previous);
  }, 900_000);

  it("a copy of the action whose runtime cannot be installed fails with one line, not a stack trace", async () => {
    const broken = join(tmp, "_actions", "OWNER", "modelship", "broken");
    await copyCheckout(broken);
    await writeFile(join(broken, "package-lock.json"), "{ not json");
    const r = await runAction("train-and-validate", {
      inputs: {},
      workspace: userRepo,
      distRoot: join(broken, "actions"),
      env: { MODELSHIP_APP_ROOT: "", RUNNER_TOOL_CACHE: join(tmp, "cache-broken") },
      timeoutMs: 300_000,
    });
    expect(r.exitCode).toBe(1);
    expect(r.errors).toEqual([expect.stringContaining("modelship could not install its runtime")]);
    expect(r.stdout + r.stderr).not.toMatch(/\n\s+at /);
    expect(await readFile(join(broken, "package-lock.json"), "utf8")).toBe("{ not json");
  }, 300_000);
});
