import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLoad } from "../src/load/generator.js";
import { freePort } from "../src/rollout/wiring.js";
import { byo } from "./support/byo.js";
import { dataPath, repoRoot, tweetTexts } from "./support/data.js";
import { baseImage, testEngine } from "./support/images.js";
import { killDaemonsOf } from "./support/leftovers.js";

/**
 * The published shape of modelship: `npm pack` → `npm install <tarball>` in an empty folder outside this
 * checkout (no node_modules of ours reachable) → the CLI trains, builds a real image (the build context
 * comes from the installed package) and serves, from that folder; validate, package (BYO ONNX), gate,
 * status, host check and the help of drift/deploy/rollback/demo run from there too.
 */

const run = promisify(execFile);
const MB = 1024 * 1024;

let tmp: string;
let app: string;
let tarball: string;
let packed: { size: number; unpackedSize: number; files: { path: string }[] };
const images: string[] = [];
const children: ChildProcess[] = [];
/** The host state dir of the deploy/rollback test (its containers and HAProxy are cleaned up after). */
let deployState: string | undefined;
const PREFIX = "mstest-pkg-";

function installEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" };
  // Nothing of this checkout may leak into the installed CLI's lookups.
  for (const key of ["MODELSHIP_APP_ROOT", "GITHUB_WORKSPACE", "NODE_PATH", "MODELSHIP_CLI_ENTRY"])
    delete env[key];
  return env;
}

async function modelship(args: string[], timeout = 240_000) {
  return run("npx", ["--no-install", "modelship", ...args], {
    cwd: app,
    env: installEnv(),
    timeout,
    maxBuffer: 32 * MB,
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "mstest-pkg-"));
  app = join(tmp, "user");
  await mkdir(app);
  // dist/ is fresh (test/global-setup.ts compiled it); prepack would only rebuild it.
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], {
    cwd: repoRoot,
    env: installEnv(),
    maxBuffer: 32 * MB,
  });
  const doc = JSON.parse(stdout) as Array<typeof packed & { filename: string }>;
  packed = doc[0] as typeof packed;
  tarball = join(tmp, (doc[0] as { filename: string }).filename);
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", tarball], {
    cwd: app,
    env: installEnv(),
    timeout: 300_000,
    maxBuffer: 32 * MB,
  });
}, 420_000);

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  if (deployState) {
    const engine = await testEngine();
    for (const c of await engine
      .listContainers({ labels: { "dev.modelship.state-dir": deployState } })
      .catch(() => []))
      await engine.remove(c.id, { force: true }).catch(() => {});
    await killDaemonsOf(deployState);
    await rm(deployState, { recursive: true, force: true });
  }
  if (images.length > 0) {
    const engine = await testEngine();
    for (const image of images) await engine.removeImage(image, { force: true }).catch(() => {});
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("npm pack", () => {
  it("ships compiled JS, the Dockerfile and its helper, monitoring assets — no sources or tests", () => {
    const paths = packed.files.map((f) => f.path);
    for (const must of [
      "bin/modelship.js",
      "dist/src/cli/main.js",
      "dist/serving/main.js",
      "serving/Dockerfile",
      "serving/model.Dockerfile",
      "src/image/rootfs.cjs",
      "monitoring/prometheus.yml",
      "monitoring/rules/modelship.rules.yml",
      "LICENSE",
      "package.json",
    ])
      expect(paths).toContain(must);
    expect(
      paths.filter((p) => p.endsWith(".ts") || p.startsWith("test/") || p.startsWith("actions/")),
    ).toEqual([]);
    expect(paths.filter((p) => p.endsWith(".map"))).toEqual([]);
    // a few hundred KB: compiled JS only (the real number is in docs/use-from-your-repository.md)
    expect(packed.size).toBeLessThan(1 * MB);
    expect(packed.unpackedSize).toBeLessThan(3 * MB);
  });

  it("installs with metadata fit for the registry", async () => {
    const pkg = JSON.parse(await readFile(join(app, "node_modules", "modelship", "package.json"), "utf8"));
    expect(pkg.license).toBe("MIT");
    expect(pkg.engines.node).toMatch(/^>=20/);
    expect(pkg.repository.url).toMatch(/modelship/);
    expect(pkg.keywords.length).toBeGreaterThan(3);
    expect(pkg.bin.modelship).toBe("bin/modelship.js");
    expect(existsSync(join(app, "node_modules", "modelship", "src", "cli"))).toBe(false);
  });
});

describe("the installed CLI, from an empty folder", () => {
  let bundle: string;
  let image: string;

  it("--version prints the package version", async () => {
    const own = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as { version: string };
    const { stdout } = await modelship(["--version"]);
    expect(stdout.trim()).toBe(own.version);
  });

  it("train writes a bundle", async () => {
    await writeFile(
      join(app, "modelship.yaml"),
      [
        "train:",
        `  data: ${dataPath()}`,
        "  labels: [negative, positive]",
        "  name: pkg",
        "  params:",
        "    cvFolds: 2",
        "",
      ].join("\n"),
    );
    const { stdout } = await modelship(["train", "--config", "modelship.yaml", "--json"]);
    const doc = JSON.parse(stdout.trim()) as {
      bundle: string;
      passed: boolean;
      metrics: { accuracy: number };
    };
    expect(doc.passed).toBe(true);
    expect(doc.bundle.startsWith(join(app, "models"))).toBe(true);
    expect(doc.metrics.accuracy).toBeGreaterThan(0.9);
    bundle = doc.bundle;
  }, 300_000);

  it("build makes a real image from the installed package's server and smoke-tests it", async () => {
    const base = await baseImage();
    const repository = `mstest-pkg/m${Math.random().toString(16).slice(2, 10)}`;
    const { stdout } = await modelship(
      ["build", "--model", bundle, "--base-image", base, "--repository", repository, "--json"],
      400_000,
    );
    const doc = JSON.parse(stdout.trim()) as { image: string; tags: string[] };
    images.push(...doc.tags);
    image = doc.image;
    expect(doc.image.startsWith(`${repository}:`)).toBe(true);
    const engine = await testEngine();
    expect(await engine.inspectImage(doc.image)).not.toBeNull();
  }, 420_000);

  it("serve answers /ready and /predict", async () => {
    const port = await freePort();
    // the bin the install linked, run directly so the test owns the server process (npx would sit between)
    const child = spawn(
      process.execPath,
      [
        join(app, "node_modules", ".bin", "modelship"),
        "serve",
        "--model",
        bundle,
        "--port",
        String(port),
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
      ],
      { cwd: app, env: installEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(child);
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr += String(d);
    });
    const url = `http://127.0.0.1:${port}`;
    let ready = false;
    for (let i = 0; i < 240 && !ready; i++) {
      ready = await fetch(`${url}/ready`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (!ready) await new Promise((r) => setTimeout(r, 250));
    }
    expect(ready, stderr).toBe(true);
    const res = await fetch(`${url}/predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "Thank you so much, the crew was wonderful and the flight was great!" }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { sentiment: string };
    expect(body.sentiment).toBe("positive");
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }, 120_000);

  it("host init, deploy v1, canary-deploy v2 under load, rollback — against a real HAProxy", async () => {
    // a second release of the same weights (a new version), built by the installed CLI too
    const card = JSON.parse(await readFile(join(bundle, "model.json"), "utf8")) as {
      name: string;
      version: string;
      model: { sha256: string };
    };
    const v2 = `20990101.000002-${card.model.sha256.slice(0, 8)}`;
    const bundle2 = join(app, "models", `${card.name}-${v2}`);
    await cp(bundle, bundle2, { recursive: true });
    await writeFile(join(bundle2, "model.json"), `${JSON.stringify({ ...card, version: v2 }, null, 2)}\n`);
    // the base image again (scripts/base-image.sh is idempotent): a concurrent suite may have replaced it
    // since the first build, and baseImage() caches its reference for the whole process
    const base = (
      await run("bash", [join(repoRoot, "scripts", "base-image.sh"), "mstest-base"], { env: process.env })
    ).stdout
      .trim()
      .split("\n")
      .pop()!;
    const built = await modelship(
      [
        "build",
        "--model",
        bundle2,
        "--base-image",
        base,
        "--repository",
        `mstest-pkg/v2${Math.random().toString(16).slice(2, 10)}`,
        "--json",
      ],
      400_000,
    );
    const doc2 = JSON.parse(built.stdout.trim()) as { image: string; tags: string[] };
    images.push(...doc2.tags);

    deployState = await mkdtemp(join(tmpdir(), "mstest-pkg-state-"));
    const sd = ["--state-dir", deployState];
    const [edge, metrics] = [await freePort(), await freePort()];
    await modelship([
      "host",
      "init",
      ...sd,
      "--edge-port",
      String(edge),
      "--metrics-port",
      String(metrics),
      "--no-watch",
    ]);
    const common = [
      "--fast",
      "--latency-factor",
      "10",
      "--max-p95-ms",
      "2000",
      "--max-p99-ms",
      "4000",
      "--name-prefix",
      PREFIX,
      ...sd,
    ];
    const first = await modelship(["deploy", "--image", image, ...common], 300_000);
    expect(first.stdout).toContain("Starting first deployment (100% traffic)... ✓");
    const load = await startLoad({
      url: `http://127.0.0.1:${edge}`,
      texts: tweetTexts(),
      rps: 100,
      connections: 8,
    });
    try {
      await modelship(["deploy", "--image", doc2.image, ...common], 300_000);
      const roles = async () =>
        (
          JSON.parse((await modelship(["status", ...sd, "--json", "--window", "0"])).stdout.trim()) as {
            versions: { version: string; role: string }[];
          }
        ).versions;
      expect((await roles()).find((v) => v.version === v2)?.role).toBe("stable");
      await modelship(["rollback", "--reason", "npm-package test", ...sd, "--name-prefix", PREFIX], 300_000);
      const after = await roles();
      expect(after.find((v) => v.version === card.version)?.role).toBe("stable");
      expect(after.find((v) => v.version === v2)?.role).not.toBe("stable");
    } finally {
      const report = await load.stop();
      expect(report.completed).toBeGreaterThan(100);
      expect(
        { non2xx: report.non2xx, errors: report.errorCount },
        `failed requests (ms after load start): ${JSON.stringify(report.failures)}`,
      ).toEqual({ non2xx: 0, errors: 0 });
    }
  }, 900_000);
});

describe("the other commands from the installed tarball", () => {
  let packaged: string;
  /** Nothing the installed CLI prints may point into this checkout (its code, its node_modules). */
  const outside = (out: string) => expect(out).not.toContain(repoRoot);
  const failure = (e: { code?: number; stdout?: string; stderr?: string }) => ({
    code: e.code,
    stdout: e.stdout ?? "",
    stderr: e.stderr ?? "",
  });

  it("the installed bin resolves to the installed package, not this checkout", async () => {
    const { stdout } = await run(
      process.execPath,
      ["-e", "process.stdout.write(require('fs').realpathSync(require.resolve('modelship/package.json')))"],
      { cwd: app, env: installEnv() },
    );
    expect(stdout).toBe(join(app, "node_modules", "modelship", "package.json"));
  });

  it("package turns the shared BYO ONNX model + its evaluation CSV into a bundle", async () => {
    const { stdout } = await modelship([
      "package",
      "--model",
      byo("wine-gbm.onnx"),
      "--data",
      byo("wine-test.csv"),
      "--name",
      "wine",
      "--out",
      join(app, "byo-models"),
      "--json",
    ]);
    outside(stdout);
    const doc = JSON.parse(stdout.trim()) as { bundle: string; metrics: { accuracy: number } };
    expect(doc.bundle.startsWith(join(app, "byo-models", "wine-"))).toBe(true);
    expect(existsSync(join(doc.bundle, "model.onnx"))).toBe(true);
    expect(existsSync(join(doc.bundle, "model.json"))).toBe(true);
    expect(doc.metrics.accuracy).toBeGreaterThan(0.9);
    packaged = doc.bundle;
  }, 120_000);

  it("validate evaluates the bare ONNX file and the packaged bundle", async () => {
    const header = (await readFile(byo("wine-test.csv"), "utf8")).split("\n")[0]!.split(",");
    const bare = await modelship([
      "validate",
      "--model",
      byo("wine-gbm.onnx"),
      "--data",
      byo("wine-test.csv"),
      "--label-column",
      "cultivar",
      "--feature-columns",
      header.filter((c) => c !== "cultivar").join(","),
      "--json",
    ]);
    outside(bare.stdout);
    const doc = JSON.parse(bare.stdout.trim()) as {
      task: string;
      labels: string[];
      metrics: { accuracy: number };
    };
    expect(doc.task).toBe("tabular-classification");
    expect(doc.labels).toHaveLength(3);
    expect(doc.metrics.accuracy).toBeGreaterThan(0.9);
    const ofBundle = await modelship([
      "validate",
      "--model",
      packaged,
      "--data",
      byo("wine-test.csv"),
      "--json",
    ]);
    expect(
      (JSON.parse(ofBundle.stdout.trim()) as { model: { bundle: { name: string } } }).model.bundle.name,
    ).toBe("wine");
    // bad input: one line, exit 2, no stack trace
    const bad = await modelship(["validate", "--model", packaged]).then(
      () => ({ code: 0, stdout: "", stderr: "" }),
      failure,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: required option '--data <csv>'/m);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it("gate judges the packaged bundle against a production model (paired, on its evaluation rows)", async () => {
    const { stdout } = await modelship(["gate", "--candidate", packaged, "--baseline", packaged, "--json"]);
    outside(stdout);
    const doc = JSON.parse(stdout.trim()) as { passed: boolean; comparison: { mode: string } };
    expect(doc.passed).toBe(true);
    expect(doc.comparison.mode).toBe("paired");
    // a missing candidate is a usage error (exit 2), not a crash
    const bad = await modelship(["gate", "--candidate", join(app, "nope"), "--baseline", packaged]).then(
      () => ({ code: 0, stdout: "", stderr: "" }),
      failure,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it("host check on a fresh state dir reports what is missing and exits 3; status shows nothing deployed", async () => {
    const state = join(tmp, "fresh-state");
    const check = await modelship(["host", "check", "--state-dir", state, "--json"]).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      failure,
    );
    expect(check.code).toBe(3); // documented: "exit 3 if not" (environment)
    const report = JSON.parse(check.stdout.trim()) as {
      ok: boolean;
      stateDir: string;
      checks: { name: string; ok: boolean; fix?: string }[];
    };
    expect(report.ok).toBe(false);
    expect(report.stateDir).toBe(state);
    const stateCheck = report.checks.find((c) => c.name === "state dir");
    expect(stateCheck?.ok).toBe(false);
    expect(stateCheck?.fix).toContain(`modelship host init --state-dir ${state}`);
    const status = await modelship(["status", "--state-dir", state, "--json", "--window", "0"]);
    const doc = JSON.parse(status.stdout.trim()) as {
      stateDir: string;
      versions: unknown[];
      operation: unknown;
    };
    expect(doc.stateDir).toBe(state);
    expect(doc.versions).toEqual([]);
    expect(doc.operation).toBeNull();
  }, 120_000);

  for (const command of ["drift", "deploy", "rollback", "demo"]) {
    it(`${command} --help`, async () => {
      const { stdout } = await modelship([command, "--help"]);
      expect(stdout).toMatch(new RegExp(`^Usage: modelship ${command} \\[options\\]`));
      expect(stdout).toContain("--state-dir");
    });
  }
});
