import { type ChildProcess, spawn } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../src/ledger/ledger.js";
import { type LoadHandle, type LoadReport, startLoad } from "../src/load/generator.js";
import { freePort } from "../src/rollout/wiring.js";
import { trainedBundle } from "./support/bundle.js";
import { runCli } from "./support/cli.js";
import { repoRoot, tweetTexts } from "./support/data.js";
import { ensureDockerHost, modelImage, testEngine } from "./support/images.js";
import { killDaemonsOf } from "./support/leftovers.js";

/**
 * The product's promise, end to end on real parts: HAProxy, Podman containers of the real model server,
 * the real model, the real CLI. Every case runs under continuous load from a separate process and
 * counts what users saw. Cases share one host (state dir, HAProxy, images) and run in order.
 */
const PREFIX = "mstest-acc-";
let stateDir: string;
let edgeUrl: string;
const images: Record<"v1" | "v2" | "flipped", { ref: string; version: string }> = {} as never;

const cli = (args: string[], timeoutMs = 180_000) => runCli(args, { timeoutMs });

const common = () => ["--state-dir", stateDir, "--name-prefix", PREFIX];
// This CI host has 2 cores shared with every other suite: a fresh container's latency is noise here, so
// the latency limits are loosened (test/analysis.test.ts covers those checks); errors and quality are not.
const LOOSE_LATENCY = ["--latency-factor", "10", "--max-p95-ms", "2000", "--max-p99-ms", "4000"];
const deployArgs = (ref: string, extra: string[] = []) => [
  "deploy",
  "--image",
  ref,
  "--fast",
  ...LOOSE_LATENCY,
  ...common(),
  ...extra,
];

async function ledger() {
  return new Ledger(stateDir).read();
}

/** Runs `fn` under ≥200 req/s of real tweets through the edge; returns what the load generator saw. */
async function underLoad<T>(fn: () => Promise<T>): Promise<{ result: T; load: LoadReport }> {
  const load: LoadHandle = await startLoad({ url: edgeUrl, texts: tweetTexts(), rps: 220, connections: 24 });
  try {
    await new Promise((r) => setTimeout(r, 1500)); // steady state before the change
    const result = await fn();
    await new Promise((r) => setTimeout(r, 1000)); // and after it
    return { result, load: await load.stop() };
  } catch (err) {
    await load.stop().catch(() => {});
    throw err;
  }
}

function expectNoUserErrors(load: LoadReport) {
  expect(load.completed).toBeGreaterThan(500);
  expect({ non2xx: load.non2xx, errors: load.errors, first: load.failures.slice(0, 5) }).toEqual({
    non2xx: 0,
    errors: {},
    first: [],
  });
}

/** A copy of the trained bundle under another version: same weights, a new release of it. */
async function bundleAs(src: string, stamp: string): Promise<string> {
  const card = JSON.parse(await readFile(join(src, "model.json"), "utf8"));
  const version = `${stamp}-${card.model.sha256.slice(0, 8)}`;
  const dir = join(repoRoot, "test", ".cache", "acceptance", `${card.name}-${version}`);
  await rm(dir, { recursive: true, force: true });
  await cp(src, dir, { recursive: true });
  await writeFile(join(dir, "model.json"), `${JSON.stringify({ ...card, version }, null, 2)}\n`);
  return dir;
}

async function imageOf(dir: string, repository: string) {
  const card = JSON.parse(await readFile(join(dir, "model.json"), "utf8"));
  // One repository per image: modelImage drops older content keys of the same repository.
  const img = await modelImage(dir, { repository });
  return { ref: img.ref, version: card.version as string };
}

async function cleanupContainers() {
  const engine = await testEngine();
  for (const c of await engine.listContainers({ labels: { "dev.modelship.state-dir": stateDir } }))
    await engine.remove(c.id, { force: true }).catch(() => {});
}

beforeAll(async () => {
  ensureDockerHost();
  const good = await trainedBundle();
  const flipped = await trainedBundle({ swapped: true });
  // One build at a time: concurrent builds on Podman's Docker API can lose a tag.
  const v1 = await imageOf(await bundleAs(good, "20260101.000001"), "mstest-acc-v1");
  const v2 = await imageOf(await bundleAs(good, "20260101.000002"), "mstest-acc-v2");
  const fl = await imageOf(flipped, "mstest-acc-flipped");
  Object.assign(images, { v1, v2, flipped: fl });
  stateDir = await mkdtemp(join(tmpdir(), "mstest-acc-state-"));
  const [edge, metrics] = [await freePort(), await freePort()];
  const init = await cli([
    "host",
    "init",
    "--state-dir",
    stateDir,
    "--edge-port",
    String(edge),
    "--metrics-port",
    String(metrics),
  ]);
  expect(init.code, init.stderr).toBe(0);
  edgeUrl = `http://127.0.0.1:${edge}`;
  const first = await cli(deployArgs(images.v1.ref));
  expect(first.code, first.stdout + first.stderr).toBe(0);
  expect(first.stdout).toContain("Starting first deployment (100% traffic)... ✓");
}, 900_000);

afterAll(async () => {
  if (!stateDir) return;
  await cleanupContainers();
  await killDaemonsOf(stateDir);
  await rm(stateDir, { recursive: true, force: true });
});

describe("acceptance: canary deploy and rollback on real HAProxy + Podman", () => {
  it("1. a good canary is promoted 5→25→50→100 under load: 0 non-2xx, 0 connection errors", async () => {
    const { result, load } = await underLoad(() => cli(deployArgs(images.v2.ref)));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const lines = result.stdout.split("\n");
    for (const prefix of [
      "Validating model... ✓",
      "Building container... ✓",
      "Starting canary deployment (5% traffic)... ✓",
      "No errors detected, expanding to 25%... ✓",
      "No errors detected, expanding to 50%... ✓",
      "Expanding to 100%... ✓",
      "Draining old connections... ✓",
      "Deployment complete! Zero requests dropped.",
    ])
      expect(
        lines.some((l) => l.startsWith(prefix)),
        `missing line: ${prefix}\n${result.stdout}`,
      ).toBe(true);
    expectNoUserErrors(load);
    const l = await ledger();
    expect(l.versions.find((v) => v.version === images.v2.version)).toMatchObject({
      role: "stable",
      weight: 100,
    });
    expect(l.versions.find((v) => v.version === images.v1.version)).toMatchObject({
      role: "standby",
      weight: 0,
    });
    const analysed = l.versions.find((v) => v.version === images.v2.version)!.analysis;
    expect(analysed.filter((a) => a.verdict === "pass").map((a) => a.weight)).toEqual([5, 25, 50]);
    const status = JSON.parse((await cli(["status", "--json", ...common().slice(0, 2)])).stdout);
    expect(status.edge.url).toBe(edgeUrl);
    expect(
      status.versions.map((v: { version: string; role: string; weight: number }) => [
        v.version,
        v.role,
        v.weight,
      ]),
    ).toEqual([
      [images.v1.version, "standby", 0],
      [images.v2.version, "stable", 100],
    ]);
  });

  it("4. rollback: warm standby switches in ≤ 1 s, cold start in ≤ 10 s, both with 0 non-2xx", async () => {
    const warm = await underLoad(() =>
      cli(["rollback", "--reason", "acceptance warm", "--json", ...common()]),
    );
    expect(warm.result.code, warm.result.stderr).toBe(0);
    const warmOut = JSON.parse(warm.result.stdout.trim().split("\n").at(-1)!);
    expect(warmOut).toMatchObject({
      type: "result",
      mode: "warm",
      version: images.v1.version,
      reason: "acceptance warm",
    });
    expect(warmOut.switchMs).toBeLessThanOrEqual(1000);
    expectNoUserErrors(warm.load);

    // v2 is now the warm standby; remove its container so the way back is a cold start
    const engine = await testEngine();
    const v2 = (await ledger()).versions.find((v) => v.version === images.v2.version)!;
    await engine.remove(v2.container!.id, { force: true });
    const cold = await underLoad(() =>
      cli(["rollback", "--to", images.v2.version, "--reason", "acceptance cold", "--json", ...common()]),
    );
    expect(cold.result.code, cold.result.stderr).toBe(0);
    const coldOut = JSON.parse(cold.result.stdout.trim().split("\n").at(-1)!);
    expect(coldOut).toMatchObject({ mode: "cold", version: images.v2.version });
    // Production restored (all new requests on the target) within 10 s of the command starting.
    expect(coldOut.restoredMs).toBeLessThanOrEqual(10_000);
    expectNoUserErrors(cold.load);
    const history = (await ledger()).history.filter((h) => h.kind === "rollback");
    expect(history.map((h) => h.reason)).toEqual(["acceptance warm", "acceptance cold"]);
    expect(history[0]?.by).toBeTruthy();
  });

  it("5. kill -9 of the serving container mid-load: 0 user-facing errors (warm standby is HAProxy backup); the engine restarts it", async () => {
    const engine = await testEngine();
    const stable = (await ledger()).versions.find((v) => v.role === "stable")!;
    const before = await engine.inspectContainer(stable.container!.id);
    const { load } = await underLoad(async () => {
      process.kill(before!.raw.State.Pid!, "SIGKILL");
      const deadline = Date.now() + 20_000;
      for (;;) {
        const s = await engine.inspectContainer(stable.container!.id);
        const ready = await fetch(`http://127.0.0.1:${stable.container!.hostPort}/ready`).then(
          (r) => r.ok,
          () => false,
        );
        if (s?.running && s.restartCount > before!.restartCount && ready) break;
        if (Date.now() > deadline) throw new Error("the killed container did not come back within 20 s");
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 2500)); // HAProxy: rise 2 checks
    });
    const status = JSON.parse((await cli(["status", "--json", ...common().slice(0, 2)])).stdout);
    expect(status.versions.find((v: { role: string }) => v.role === "stable").health).toMatch(/^UP/);
    console.info(
      `kill -9: ${load.non2xx} non-2xx, ${load.errorCount} connection errors of ${load.completed} requests`,
    );
    expectNoUserErrors(load);
  });

  it("2. a canary answering 500 is stopped: by the smoke test, and (smoke skipped) at the first analysis; users see 0 errors", async () => {
    const before = (await ledger()).versions.find((v) => v.role === "stable")!;
    const chaos = ["--env", "MODELSHIP_CHAOS_ERROR_RATE=1"];
    const smoke = await cli(deployArgs(images.v1.ref, chaos));
    expect(smoke.code, smoke.stdout + smoke.stderr).toBe(1);
    expect(smoke.stdout).toMatch(
      /Deployment aborted: the candidate did not get ready: golden smoke test failed/,
    );

    const { result, load } = await underLoad(() =>
      cli(deployArgs(images.v1.ref, [...chaos, "--skip-smoke"])),
    );
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(
      /Starting canary deployment \(5% traffic\)\.\.\. ✗ analysis failed at 5%: error-rate/,
    );
    expect(result.stdout).toMatch(/Deployment aborted: analysis failed at 5%/);
    expectNoUserErrors(load);
    const l = await ledger();
    const failed = l.versions.find((v) => v.version === images.v1.version)!;
    expect(failed).toMatchObject({ role: "failed", weight: 0, container: null });
    expect(failed.analysis).toHaveLength(1);
    expect(failed.failureReason).toMatch(/error-rate: canary 5xx\/error rate (100|9\d)\.\d\d%/);
    const stable = l.versions.find((v) => v.role === "stable")!;
    expect(stable).toMatchObject({ version: before.version, weight: 100, container: before.container });
  });

  it("3. a canary with flipped predictions (200 OK) is aborted by the quality check", async () => {
    const { result, load } = await underLoad(() => cli(deployArgs(images.flipped.ref)));
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(/Deployment aborted: analysis failed at \d+%: class-mix: class mix shift/);
    expect(result.stdout).not.toMatch(/error-rate: canary 5xx\/error rate [1-9]/);
    expectNoUserErrors(load);
    expect((await ledger()).versions.find((v) => v.version === images.flipped.version)?.role).toBe("failed");
  });

  it("6. a second deploy is refused while one runs; a deploy killed mid-rollout is explained by status and repaired", async () => {
    const running: ChildProcess = spawn(
      "node",
      ["bin/modelship.js", ...deployArgs(images.v1.ref, ["--json", "--interval", "6s"])],
      {
        cwd: repoRoot,
        env: process.env,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let events = "";
    running.stdout?.on("data", (d) => {
      events += d;
    });
    const exited = new Promise<number | null>((r) => running.on("exit", (code) => r(code)));
    const load = await startLoad({ url: edgeUrl, texts: tweetTexts(), rps: 220, connections: 24 });
    try {
      const deadline = Date.now() + 90_000;
      while (!/"type":"weight","version":"[^"]+","weight":5/.test(events)) {
        if (Date.now() > deadline) throw new Error(`the deploy never reached 5%:\n${events}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const second = await cli(deployArgs(images.v2.ref));
      expect(second.code).toBe(4);
      expect(second.stderr).toMatch(/another operation is in progress \(deploy of .* by pid \d+/);
      expect((await ledger()).operation?.kind).toBe("deploy");

      running.kill("SIGKILL");
      await exited;
      const status = JSON.parse((await cli(["status", "--json", ...common().slice(0, 2)])).stdout);
      expect(status.operation).toMatchObject({
        kind: "deploy",
        state: "interrupted",
        target: images.v1.version,
      });
      expect(status.operation.explanation).toMatch(/interrupted at "weight \d+".*modelship host repair/);
      const human = await cli(["status", ...common().slice(0, 2)]);
      expect(human.stdout).toMatch(/was interrupted at "weight \d+"/);

      const repair = await cli(["host", "repair", ...common().slice(0, 2)]);
      expect(repair.code, repair.stderr).toBe(0);
      expect(repair.stdout).toMatch(/removed the unfinished canary/);
      const l = await ledger();
      expect(l.operation).toBeNull();
      expect(l.versions.find((v) => v.version === images.v1.version)).toMatchObject({
        role: "failed",
        container: null,
      });
      expect(l.versions.find((v) => v.role === "stable")).toMatchObject({
        version: images.v2.version,
        weight: 100,
      });
      const engine = await testEngine();
      const left = await engine.listContainers({ labels: { "dev.modelship.state-dir": stateDir } });
      expect(left.map((c) => c.name).sort()).toEqual(
        l.versions
          .filter((v) => v.container)
          .map((v) => v.container!.name)
          .sort(),
      );
    } finally {
      running.kill("SIGKILL");
      const report = await load.stop();
      expectNoUserErrors(report);
    }
  });
});
