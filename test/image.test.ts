import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import type { ModelCard } from "../src/contracts/card.js";
import type { Engine, ImageInfo } from "../src/engine/engine.js";
import { SERVER_PORT, smokeTestImage } from "../src/image/build.js";
import { MODEL_LABELS, OCI_LABELS } from "../src/image/labels.js";
import { lockServerKey, resolveServerKey, withServerImage } from "../src/image/server.js";
import { formatSmokeReport, runSmokeTest, waitForReady } from "../src/smoke/smoke.js";
import { Reporter } from "../src/util/progress.js";
import { trainedBundle } from "./support/bundle.js";
import { runCli } from "./support/cli.js";
import { repoRoot } from "./support/data.js";
import { baseImage, type ModelImage, modelImage, testEngine } from "./support/images.js";

const run = promisify(execFile);
const suffix = Math.random().toString(16).slice(2, 8);

/** Runs the CLI; resolves with the exit code instead of throwing. */
const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) => runCli(args, { env });

/** A temp copy of a bundle whose golden expectations were edited: the model itself is untouched. */
async function tamperedCopy(bundleDir: string): Promise<{ dir: string; card: ModelCard }> {
  const dir = await mkdtemp(join(tmpdir(), "mstest-tampered-"));
  await cp(bundleDir, dir, { recursive: true });
  const card = JSON.parse(await readFile(join(dir, "model.json"), "utf8")) as ModelCard;
  const first = card.golden[0];
  if (!first) throw new Error("bundle has no golden examples");
  // Reverse the probabilities and take the other label: what a different model would have answered.
  first.expected.probabilities = [...first.expected.probabilities].reverse();
  const labels = card.io.labels;
  const best = first.expected.probabilities.indexOf(Math.max(...first.expected.probabilities));
  first.expected.label = labels[best] ?? first.expected.label;
  await writeFile(join(dir, "model.json"), JSON.stringify(card, null, 2));
  return { dir, card: (await readBundle(dir)).card };
}

describe("model server image (real docker build on the local base, real model)", () => {
  let engine: Engine;
  let bundleDir: string;
  let card: ModelCard;
  let image: ModelImage;
  let info: ImageInfo;
  const containers: string[] = [];
  const tempDirs: string[] = [];
  const images: string[] = [];

  beforeAll(async () => {
    engine = await testEngine();
    bundleDir = await trainedBundle();
    card = (await readBundle(bundleDir)).card;
    image = await modelImage(bundleDir);
    const inspected = await engine.inspectImage(image.ref);
    if (!inspected) throw new Error(`${image.ref} missing after build`);
    info = inspected;
    if (image.build)
      console.log(`[image] built ${image.ref} in ${image.build.buildMs} ms, ${info.sizeBytes} bytes`);
  });

  afterAll(async () => {
    for (const c of containers) await engine?.remove(c, { force: true });
    for (const i of images) await engine?.removeImage(i, { force: true });
    for (const d of tempDirs) await rm(d, { recursive: true, force: true });
  });

  it("carries the OCI and model labels", () => {
    expect(info.labels[OCI_LABELS.version]).toBe(card.version);
    expect(info.labels[OCI_LABELS.created]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(info.labels).toHaveProperty([OCI_LABELS.revision]);
    expect(info.labels).toHaveProperty([OCI_LABELS.source]);
    expect(info.labels[MODEL_LABELS.name]).toBe(card.name);
    expect(info.labels[MODEL_LABELS.version]).toBe(card.version);
    expect(info.labels[MODEL_LABELS.sha256]).toBe(card.model.sha256);
  });

  it("runs as the non-root node user, with a HEALTHCHECK on /ready", () => {
    expect(info.user).toBe("node");
    expect(info.healthcheck?.[0]).toBe("CMD");
    expect(info.healthcheck?.join(" ")).toContain("/ready");
  });

  it("stays under the 200 MB goal", () => {
    expect(info.sizeBytes).toBeLessThan(200e6);
  });

  describe("a running container", () => {
    const name = `mstest-image-${suffix}`;
    let baseUrl: string;

    beforeAll(async () => {
      containers.push(name);
      await engine.runContainer({
        image: image.ref,
        name,
        port: SERVER_PORT,
        env: { MODELSHIP_WORKERS: "1", MODELSHIP_DRAIN_GRACE_MS: "0" },
      });
      baseUrl = `http://127.0.0.1:${await engine.hostPort(name, SERVER_PORT)}`;
      await waitForReady(baseUrl, { timeoutMs: 60_000 });
    });

    const inContainer = async (script: string) => {
      const r = await engine.execIn(name, ["node", "-e", script]);
      return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
    };

    it("serves as uid 1000 and cannot rewrite its code or model", async () => {
      expect((await inContainer("process.stdout.write(String(process.getuid()))")).out).toBe("1000");
      for (const path of ["/app/dist/serving/main.js", "/model/model.onnx"]) {
        const r = await inContainer(
          `try{require('fs').appendFileSync(${JSON.stringify(path)},'x');process.stdout.write('written')}catch(e){process.stdout.write(e.code)}`,
        );
        expect(r.out).toBe("EACCES");
      }
    });

    it("has no shell or package manager (the runtime is FROM scratch plus node)", async () => {
      for (const cmd of [
        ["sh", "-c", "true"],
        ["/bin/sh", "-c", "true"],
        ["npm", "--version"],
      ])
        expect((await engine.execIn(name, cmd)).code).not.toBe(0);
    });

    it("keeps only the linux-x64 onnxruntime binaries", async () => {
      const r = await inContainer(
        "const fs=require('fs'),b='/app/node_modules/onnxruntime-node/bin/napi-v6';process.stdout.write(JSON.stringify(fs.readdirSync(b).map(o=>o+'/'+fs.readdirSync(b+'/'+o).join(','))))",
      );
      expect(JSON.parse(r.out)).toEqual(["linux/x64"]);
    });

    it("reports healthy through its own HEALTHCHECK command", async () => {
      const test = info.healthcheck?.slice(1) ?? [];
      const r = await engine.execIn(name, test);
      expect(r.code).toBe(0);
    });

    it("passes the golden smoke test", async () => {
      const result = await runSmokeTest({ baseUrl, card });
      expect(formatSmokeReport(result)).not.toContain("FAILED");
      expect(result.passed).toBe(true);
      expect(result.checks.map((c) => c.name)).toEqual([
        "/predict",
        "/predict (batch)",
        `/v2/models/${card.name}/infer`,
        "/metrics",
        "/model-info",
      ]);
      expect(result.examples).toBe(card.golden.length);
      expect(result.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    });

    it("fails the smoke test with a readable diff when the expectations differ", async () => {
      const tampered = await tamperedCopy(bundleDir);
      tempDirs.push(tampered.dir);
      const result = await runSmokeTest({ baseUrl, card: tampered.card });
      expect(result.passed).toBe(false);
      const report = formatSmokeReport(result);
      // Example 0 differs on both routes; every other example still matches.
      expect(result.mismatches.every((m) => m.example === 0)).toBe(true);
      expect(result.mismatches.map((m) => m.route)).toContain("/predict");
      expect(result.mismatches.map((m) => m.route)).toContain(`/v2/models/${card.name}/infer`);
      expect(report).toMatch(/golden mismatches \(tolerance 0\.0001\)/);
      expect(report).toMatch(/#\s+route\s+input\s+field\s+expected\s+actual\s+\|diff\|/);
      expect(report).toContain(`${card.golden.length - 1}/${card.golden.length} golden examples`);
      const first = card.golden[0]?.expected.probabilities[0] as number;
      expect(report).toContain(first.toFixed(6));
    });

    it("fails the smoke test when the server is another model", async () => {
      const other = structuredClone(card);
      other.version = "20000101.000000-00000000";
      const result = await runSmokeTest({ baseUrl, card: other });
      expect(result.passed).toBe(false);
      const byName = Object.fromEntries(result.checks.map((c) => [c.name, c]));
      expect(byName["/metrics"]?.ok).toBe(false);
      expect(byName["/model-info"]?.ok).toBe(false);
      expect(byName["/model-info"]?.detail).toContain(card.version);
      expect(byName["/predict (batch)"]?.ok).toBe(false);
    });
  });

  it("smoke-tests a throwaway container and removes it", async () => {
    const result = await smokeTestImage(engine, image.ref, card);
    expect(result.passed).toBe(true);
    console.log(`[image] start → ready ${result.startToReadyMs} ms (docker run to first 200 on /ready)`);
    expect(result.startToReadyMs).toBeGreaterThan(0);
    expect(await engine.inspectContainer(result.container)).toBeNull();
  });

  it("`modelship build --json` builds, tags, smoke-tests and reports the image", async () => {
    const repo = `mstest-cli-${suffix}`;
    const r = await cli([
      "build",
      "--model",
      bundleDir,
      "--image",
      repo,
      "--tag",
      "candidate",
      "--base-image",
      image.baseImage,
      "--json",
    ]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    if (r.code !== 0) console.log("DEBUG", r.stderr);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      image: string;
      tags: string[];
      digest: string;
      sizeBytes: number;
      smoke: { passed: boolean; examples: number };
      startToReadyMs: number;
      buildMs: number;
      server: { ref: string; built: boolean };
    };
    images.push(...out.tags);
    const built = await engine.inspectImage(out.image);
    // The revision label is the commit checked out when the build ran, and the sha tag names it.
    const revision = built?.labels[OCI_LABELS.revision] ?? "";
    expect(revision).toMatch(/^[0-9a-f]{40}$/);
    await run("git", ["cat-file", "-e", `${revision}^{commit}`], { cwd: repoRoot });
    expect(out.image).toBe(`${repo}:${card.version}`);
    expect(out.tags).toEqual([
      `${repo}:${card.version}`,
      `${repo}:sha-${revision.slice(0, 7)}`,
      `${repo}:candidate`,
    ]);
    expect(out.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out.smoke).toMatchObject({ passed: true, examples: card.golden.length });
    for (const tag of out.tags) expect((await engine.inspectImage(tag))?.id).toBe(out.digest);
    expect(out.sizeBytes).toBe(built?.sizeBytes);
    // Two layers on the server image modelImage() built or found (same key): not rebuilt.
    const server = await resolveServerKey({ engine, baseImage: image.baseImage });
    expect(out.server).toMatchObject({ ref: server.ref, built: false });
    const layers = async (ref: string) =>
      JSON.parse(
        (await run("docker", ["image", "inspect", "--format", "{{json .RootFS.Layers}}", ref])).stdout,
      ) as string[];
    const [serverLayers, modelLayers] = [await layers(server.ref), await layers(out.image)];
    expect(modelLayers.slice(0, serverLayers.length)).toEqual(serverLayers);
    expect(modelLayers.length).toBe(serverLayers.length + 1);
    console.log(
      `[image] modelship build: ${out.buildMs} ms build, ${(out.sizeBytes / 1e6).toFixed(1)} MB, start → ready ${out.startToReadyMs} ms`,
    );
    // No smoke containers left behind.
    expect(await engine.listContainers({ labels: { "dev.modelship.role": "smoke" } })).toEqual([]);
  });

  it("`modelship build` fails (exit 1) when the image does not reproduce the bundle's golden examples", async () => {
    const tampered = await tamperedCopy(bundleDir);
    tempDirs.push(tampered.dir);
    const repo = `mstest-bad-${suffix}`;
    const r = await cli(["build", "--model", tampered.dir, "--image", repo, "--base-image", image.baseImage]);
    const all = await run("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    const left = all.stdout.split("\n").filter((ref) => ref.includes(repo));
    images.push(...left);
    expect(r.code).toBe(1);
    // An image that failed its smoke test keeps no tag a deploy could pick up.
    expect(left).toEqual([]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // The server itself refuses to become ready with golden examples it cannot reproduce.
    expect(r.stderr).toMatch(/smoke container for .* did not become ready: .*golden/i);
    expect(await engine.listContainers({ labels: { "dev.modelship.role": "smoke" } })).toEqual([]);
  });

  it("building a new server image removes the older ones no image is built from, never forced", async () => {
    const repo = `mstest-srvp-${suffix}`;
    const dir = await mkdtemp(join(tmpdir(), "mstest-srvp-"));
    tempDirs.push(dir);
    // Older "server images" of `repo`: one small layer each on the base image (a fraction of a second).
    const tiny = async (tag: string, from: string) => {
      await writeFile(join(dir, "f"), tag);
      await writeFile(join(dir, "Dockerfile"), `FROM ${from}\nCOPY f /f\n`);
      images.push(tag);
      await engine.build({ context: dir, dockerfile: join(dir, "Dockerfile"), tags: [tag] });
    };
    const [free, parent, running, locked, alias] = ["1", "2", "3", "4", "5"].map(
      (c) => `${repo}:${c.repeat(16)}`,
    ) as [string, string, string, string, string];
    const child = `mstest-srvchild-${suffix}:1`;
    for (const tag of [free, parent, running, locked]) await tiny(tag, image.baseImage);
    await tiny(child, parent); // a model image FROM `parent`
    await engine.tagImage(child, alias); // a second tag of an image that stays
    images.push(alias);
    const container = `mstest-srvp-${suffix}`;
    containers.push(container);
    await engine.run("docker create", ["create", "--name", container, running]); // a container uses `running`

    const lines: string[] = [];
    const out = new PassThrough();
    out.on("data", (c: Buffer) => lines.push(...c.toString().split("\n").filter(Boolean)));
    const lockDir = await mkdtemp(join(tmpdir(), "mstest-srvlock-"));
    tempDirs.push(lockDir);
    const release = await lockServerKey(lockDir, "4".repeat(16), false); // another build uses `locked`
    const server = await withServerImage(
      {
        engine,
        baseImage: image.baseImage,
        repository: repo,
        lockDir,
        reporter: new Reporter("human", out as unknown as NodeJS.WriteStream),
      },
      async (s) => s,
    ).finally(release);
    images.push(server.ref);
    console.log(`[image] ${lines.join("\n        ")}`);
    expect(server.built).toBe(true);
    expect(server.pruned?.removed).toEqual([free, alias]);
    expect(server.pruned?.kept).toEqual([
      { ref: parent, reason: `still in use: ${child} built from it` },
      { ref: running, reason: expect.stringMatching(/^the engine refused: .*(in use|being used)/i) },
      { ref: locked, reason: "a build is using it" },
    ]);
    const line = lines.find((l) => l.startsWith(`Building server image ${server.ref}... ✓`));
    expect(line, lines.join("\n")).toContain(
      `✓ from ${image.baseImage} (once per server version); removed older ${free}, ${alias}; kept 3 older (still in use)`,
    );
    for (const ref of [free, alias]) expect(await engine.inspectImage(ref)).toBeNull();
    for (const ref of [parent, running, locked, child, server.ref])
      expect(await engine.inspectImage(ref)).not.toBeNull();
    // Model images built from a server image keep working without its tag: they hold its layers.
    expect(await engine.inspectImage(image.ref)).not.toBeNull();
  });

  it("rejects bad flags with one line and exit 2", async () => {
    const r = await cli([
      "build",
      "--model",
      bundleDir,
      "--image",
      "Not A Valid Name",
      "--base-image",
      await baseImage(),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("--image 'Not A Valid Name' is not a valid image repository");
    for (const [args, message] of [
      [
        ["--registry", "ghcr.io", "--username", "octocat"],
        "--registry is only used to push: add --push, or drop --registry",
      ],
      [["--push", "--username", "octocat"], "--username/--password-stdin need --registry <host>"],
      [["--smoke-timeout", "soon"], "--smoke-timeout must be a positive number of seconds, got 'soon'"],
    ] as const) {
      const bad = await cli(["build", "--model", bundleDir, ...args]);
      expect({ code: bad.code, stderr: bad.stderr.trim() }).toEqual({
        code: 2,
        stderr: `modelship: ${message}`,
      });
    }
    const noBundle = await cli(["build", "--model", join(tmpdir(), `mstest-none-${suffix}`)]);
    expect(noBundle.code).toBe(2);
    expect(noBundle.stderr).toMatch(/is not a model bundle/);
  });
});
