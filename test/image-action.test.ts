import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { INPUT_NAMES } from "../actions/build-image/input-helper.js";
import { readBundle } from "../src/bundle/read.js";
import type { ModelCard } from "../src/contracts/card.js";
import type { Engine } from "../src/engine/engine.js";
import { OCI_LABELS } from "../src/image/labels.js";
import { runAction } from "./support/action-runner.js";
import { trainedBundle } from "./support/bundle.js";
import { repoRoot } from "./support/data.js";
import { baseImage, modelImage, testEngine } from "./support/images.js";

const suffix = Math.random().toString(16).slice(2, 8);

describe("actions/build-image (the bundled action, real engine, real model)", () => {
  let engine: Engine;
  let bundleDir: string;
  let card: ModelCard;
  let base: string;
  const images: string[] = [];

  beforeAll(async () => {
    engine = await testEngine();
    bundleDir = await trainedBundle();
    card = (await readBundle(bundleDir)).card;
    base = await baseImage();
    // Warms the engine's layer cache with the same context, so the action's build is mostly cached.
    await modelImage(bundleDir);
  });

  afterAll(async () => {
    for (const i of images) await engine?.removeImage(i, { force: true });
  });

  it("declares exactly the inputs it reads", async () => {
    const meta = parseYaml(
      await readFile(join(repoRoot, "actions", "build-image", "action.yml"), "utf8"),
    ) as {
      inputs: Record<string, unknown>;
      outputs: Record<string, unknown>;
      runs: { using: string; main: string };
    };
    expect(Object.keys(meta.inputs).sort()).toEqual([...INPUT_NAMES].sort());
    expect(Object.keys(meta.outputs)).toEqual(["image", "digest", "tags", "size-bytes", "start-to-ready-ms"]);
    expect(meta.runs).toEqual({ using: "node24", main: "dist/index.js" });
  });

  it("builds, smoke-tests and tags the image; outputs and job summary say so", async () => {
    const repo = `mstest-action-${suffix}`;
    const r = await runAction("build-image", {
      inputs: { bundle: bundleDir, repository: repo, tags: "latest", "base-image": base },
      timeoutMs: 300_000,
    });
    expect(r.errors).toEqual([]);
    expect(r.exitCode).toBe(0);
    const tags = r.outputs.tags?.split("\n") ?? [];
    images.push(...tags);
    // GITHUB_SHA of the push fixture names the commit.
    const sha = r.outputs.tags?.match(/:sha-([0-9a-f]{7})/)?.[1];
    expect(sha).toBeDefined();
    expect(tags).toEqual([`${repo}:${card.version}`, `${repo}:sha-${sha}`, `${repo}:latest`]);
    expect(r.outputs.image).toBe(`${repo}:${card.version}`);
    expect(r.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Number(r.outputs["start-to-ready-ms"])).toBeGreaterThan(0);
    const built = await engine.inspectImage(r.outputs.image ?? "");
    expect(built?.id).toBe(r.outputs.digest);
    expect(Number(r.outputs["size-bytes"])).toBe(built?.sizeBytes);
    expect(built?.labels[OCI_LABELS.source]).toBe("https://github.com/acme/models");
    expect(built?.labels[OCI_LABELS.revision]?.slice(0, 7)).toBe(sha);

    expect(r.summary).toContain(`## Image ${repo}:${card.version}`);
    expect(r.summary).toContain("### Golden smoke test ✅ passed");
    expect(r.summary).toMatch(/\| \/v2\/models\/[^|]+\/infer \| ok \|/);
    expect(stripVTControlCharacters(r.stdout)).toMatch(/Smoke-testing the image\.\.\. ✓ \d+ golden examples/);
  });

  it("rejects invalid inputs with one readable error and builds nothing", async () => {
    const badBool = await runAction("build-image", { inputs: { bundle: bundleDir, push: "maybe" } });
    expect(badBool.exitCode).toBe(1);
    expect(badBool.errors).toEqual([expect.stringContaining("input 'push': expected true or false")]);
    expect(badBool.stdout).not.toContain("Building");

    const noCreds = await runAction("build-image", {
      inputs: { bundle: bundleDir, push: "true", registry: "ghcr.io" },
    });
    expect(noCreds.exitCode).toBe(1);
    expect(noCreds.errors).toEqual([
      expect.stringContaining("input 'registry': needs username and password too"),
    ]);

    const noPush = await runAction("build-image", {
      inputs: { bundle: bundleDir, registry: "ghcr.io", username: "octocat", password: "s3cret-token" },
    });
    expect(noPush.exitCode).toBe(1);
    expect(noPush.errors).toEqual([
      expect.stringContaining("input 'push': registry login is only used to push"),
    ]);
    expect(noPush.stdout).not.toContain("s3cret-token");
  });

  it("fails with one line when the bundle does not exist", async () => {
    const r = await runAction("build-image", { inputs: { bundle: join(repoRoot, "no-such-bundle") } });
    expect(r.exitCode).toBe(1);
    expect(r.errors).toEqual([expect.stringMatching(/no-such-bundle is not a model bundle/)]);
  });
});
