import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../src/ledger/ledger.js";
import { type LoadReport, startLoad } from "../src/load/generator.js";
import { rolloutSettingsSchema } from "../src/rollout/settings.js";
import { freePort } from "../src/rollout/wiring.js";
import { Router } from "../src/router/router.js";
import { bundleAs, trainedBundle } from "./support/bundle.js";
import { type CliResult, runCli } from "./support/cli.js";
import { repoRoot, tweetTexts } from "./support/data.js";
import { ensureDockerHost, freshBaseImage, modelImage, testEngine } from "./support/images.js";
import { loadFlowing } from "./support/load.js";

/**
 * Issue 10 items 4–9, the rollout/ledger/repair side, as fault drills on real parts: HAProxy, Podman
 * containers of the real model server, the real CLI. Every drill that touches a serving host runs
 * under load from a separate process and must cost 0 failed requests (or refuse and change nothing).
 * Cases share one host and run in order; each leaves it serving.
 */
const exec = promisify(execFile);
const PREFIX = "mstest-flt-";
const dirs: string[] = [];
let stateDir: string;
let edgeUrl: string;
const images: Record<"v1" | "v2", { ref: string; version: string; sha256: string }> = {} as never;
const labelImages: string[] = [];

const cli = (args: string[], timeoutMs = 240_000) => runCli(args, { timeoutMs });
const out = (r: CliResult) => `${r.stdout}\n${r.stderr}`;

const sd = (dir = stateDir) => ["--state-dir", dir, "--name-prefix", PREFIX];
const deployArgs = (ref: string, dir = stateDir) => [
  "deploy",
  "--image",
  ref,
  "--steps",
  "100",
  "--drain-timeout",
  "3s",
  ...sd(dir),
];

async function underLoad<T>(fn: () => Promise<T>, url = edgeUrl): Promise<{ result: T; load: LoadReport }> {
  const load = await startLoad({ url, texts: tweetTexts(), rps: 150, connections: 16 });
  try {
    await loadFlowing(load);
    const result = await fn();
    await new Promise((r) => setTimeout(r, 1000));
    return { result, load: await load.stop() };
  } catch (err) {
    await load.stop().catch(() => {});
    throw err;
  }
}

function expectNoFailures(load: LoadReport) {
  expect(load.completed).toBeGreaterThan(100);
  expect({ non2xx: load.non2xx, errors: load.errors, first: load.failures.slice(0, 5) }).toEqual({
    non2xx: 0,
    errors: {},
    first: [],
  });
}

async function ourContainers(dir = stateDir) {
  const engine = await testEngine();
  return engine.listContainers({ labels: { "dev.modelship.state-dir": dir } });
}

/** The same image under other labels (what anyone with `docker build` can produce). */
async function relabel(ref: string, tag: string, labels: Record<string, string>): Promise<string> {
  const ctx = await mkdtemp(join(tmpdir(), "mstest-flt-ctx-"));
  try {
    await writeFile(join(ctx, "Dockerfile"), `FROM ${ref}\n`);
    const args = [
      "build",
      "-q",
      "-t",
      tag,
      ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
      ctx,
    ];
    await exec("docker", args, { env: process.env });
    labelImages.push(tag);
    return tag;
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

async function initHost(dir: string): Promise<string> {
  const [edge, metrics] = [await freePort(), await freePort()];
  const init = await cli([
    "host",
    "init",
    "--state-dir",
    dir,
    "--edge-port",
    String(edge),
    "--metrics-port",
    String(metrics),
  ]);
  expect(init.code, out(init)).toBe(0);
  return `http://127.0.0.1:${edge}`;
}

async function serverUp(name: string, dir = stateDir): Promise<boolean | undefined> {
  const s = (await (await Router.open(dir)).stats()).find((x) => x.name === name);
  return s?.up;
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 60_000, pollMs = 200): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error("condition not reached");
}

const ledger = (dir = stateDir) => new Ledger(dir).read();
const roles = async (dir = stateDir) =>
  Object.fromEntries(
    (await ledger(dir)).versions
      .filter((v) => v.role !== "retired" && v.role !== "failed")
      .map((v) => [v.version, v.role]),
  );

beforeAll(async () => {
  ensureDockerHost();
  const good = await trainedBundle();
  // The releases, stamps and repositories of test/acceptance.test.ts: one image build serves both suites.
  for (const [key, stamp] of [
    ["v1", "20260101.000001"],
    ["v2", "20260101.000002"],
  ] as const) {
    const dir = await bundleAs(good, stamp, "faults");
    const card = JSON.parse(await readFile(join(dir, "model.json"), "utf8"));
    const img = await modelImage(dir, { repository: `mstest-acc-${key}` });
    images[key] = { ref: img.ref, version: card.version, sha256: card.model.sha256 };
  }
  stateDir = await mkdtemp(join(tmpdir(), "mstest-flt-state-"));
  dirs.push(stateDir);
  edgeUrl = await initHost(stateDir);
  for (const v of [images.v1, images.v2]) {
    const r = await cli(deployArgs(v.ref));
    expect(r.code, out(r)).toBe(0);
  }
  expect(await roles()).toEqual({ [images.v2.version]: "stable", [images.v1.version]: "standby" });
}, 900_000);

afterAll(async () => {
  const engine = await testEngine();
  for (const dir of dirs) {
    for (const c of await ourContainers(dir).catch(() => []))
      await engine.remove(c.id, { force: true }).catch(() => {});
    const pid = await readFile(join(dir, "haproxy", "haproxy.pid"), "utf8").catch(() => "");
    if (Number(pid)) {
      try {
        process.kill(Number(pid), "SIGTERM");
      } catch {}
    }
    await rm(dir, { recursive: true, force: true });
  }
  for (const tag of labelImages) await engine.removeImage(tag).catch(() => {});
});

describe("issue 10 fault drills on real HAProxy + Podman (rollout, ledger, repair)", () => {
  it("item 10: docker inspect of the container `modelship deploy` started: read-only root, no capabilities, no-new-privileges, pids limit, bounded log", async () => {
    const stable = (await ledger()).versions.find((v) => v.role === "stable")!;
    const { stdout } = await exec("docker", ["inspect", stable.container!.id], { env: process.env });
    const host = JSON.parse(stdout)[0].HostConfig;
    expect(host.ReadonlyRootfs).toBe(true);
    expect(Object.keys(host.Tmpfs ?? {})).toContain("/tmp");
    // Docker Engine reports ["ALL"]; Podman expands ALL into the capabilities it removed.
    const dropped: string[] = host.CapDrop ?? [];
    if (!dropped.includes("ALL"))
      expect(dropped).toEqual(expect.arrayContaining(["CHOWN", "DAC_OVERRIDE", "KILL", "SETUID", "SETGID"]));
    expect(host.CapAdd ?? []).toEqual([]);
    expect(host.SecurityOpt).toContainEqual(expect.stringMatching(/^no-new-privileges(:true)?$/));
    const workers = rolloutSettingsSchema.parse({}).container.workers;
    expect(host.PidsLimit).toBe(64 + 24 * (workers + 1));
    expect(host.LogConfig?.Type).toBe("json-file");
    if (host.LogConfig?.Config?.["max-size"])
      expect(host.LogConfig.Config).toMatchObject({ "max-size": "10m", "max-file": "3" });
  });

  it("item 4: labels are checked before anything runs, then against /model-info before traffic; terminal output is clean", async () => {
    const before = (await ourContainers()).length;
    // an escape sequence / newline in the version label: refused before any container starts
    const evil = await relabel(images.v1.ref, "mstest-flt-evil:1", {
      "dev.modelship.model.version": "\u001b[31m20260201.000009-aaaaaaaa\u001b[0m",
    });
    const r1 = await cli(deployArgs(evil));
    expect(r1.code, out(r1)).toBe(2);
    expect(out(r1)).toMatch(/label dev\.modelship\.model\.version=.* is invalid/);
    expect(out(r1)).not.toContain("\u001b");
    expect((await ourContainers()).length).toBe(before);

    // a well-formed version label that is not the model inside: the candidate never gets traffic
    const liar = await relabel(images.v1.ref, "mstest-flt-liar:1", {
      "dev.modelship.model.version": "20260201.000099-deadbeef",
    });
    const { result: r2, load } = await underLoad(() => cli(deployArgs(liar)));
    expect(r2.code, out(r2)).toBe(1);
    expect(out(r2)).toContain("serves another model than its labels say");
    expectNoFailures(load);
    expect((await ledger()).versions.find((v) => v.version === "20260201.000099-deadbeef")?.role).toBe(
      "failed",
    );
    expect((await roles())[images.v2.version]).toBe("stable");

    // the stable version's label on another model (other sha256): an error, not "nothing to deploy"
    const same = await relabel(images.v2.ref, "mstest-flt-same:1", {
      "dev.modelship.model.sha256": "b".repeat(64),
    });
    const r3 = await cli(deployArgs(same));
    expect(r3.code, out(r3)).toBe(2);
    expect(out(r3)).toContain("a version names exactly one model");
    expect(out(r3)).not.toContain("nothing to deploy");
    expect((await ledger()).operation).toBeNull();
  });

  it("item 7: a deploy in state dir B never touches A's container of the same version and prefix", async () => {
    const b = await mkdtemp(join(tmpdir(), "mstest-flt-stateB-"));
    dirs.push(b);
    await initHost(b);
    const aStable = (await ledger()).versions.find((v) => v.role === "stable")!;
    const { result, load } = await underLoad(() => cli(deployArgs(images.v2.ref, b)));
    expect(result.code, out(result)).toBe(0);
    expectNoFailures(load);
    const engine = await testEngine();
    expect((await engine.inspectContainer(aStable.container!.id))?.running).toBe(true);
    const bStable = (await ledger(b)).versions.find((v) => v.role === "stable")!;
    expect(bStable.container!.name).not.toBe(aStable.container!.name);
    expect(bStable.container!.name.startsWith(`${PREFIX}${images.v2.version}-`)).toBe(true);
  });

  it("item 5: repair on an emptied ledger (and .bak) rebuilds it from the running containers; a deploy with both files deleted drops nothing", async () => {
    await writeFile(join(stateDir, "ledger.json"), "");
    await writeFile(join(stateDir, "ledger.json.bak"), "");
    const { result, load } = await underLoad(() => cli(["host", "repair", "--state-dir", stateDir]));
    expect(result.code, out(result)).toBe(0);
    expect(out(result)).toContain("rebuilt the ledger from the running containers");
    expectNoFailures(load);
    expect(await roles()).toEqual({ [images.v2.version]: "stable", [images.v1.version]: "standby" });

    await rm(join(stateDir, "ledger.json"));
    await rm(join(stateDir, "ledger.json.bak"));
    const d = await underLoad(() => cli(deployArgs(images.v1.ref)));
    expect(d.result.code, out(d.result)).toBe(0);
    expectNoFailures(d.load);
    expect(await roles()).toEqual({ [images.v1.version]: "stable", [images.v2.version]: "standby" });
  });

  it("items 6 and 9: stable DOWN + expired standby: check says so with the fix; repair keeps the last healthy server", async () => {
    const l = await ledger();
    const stable = l.versions.find((v) => v.role === "stable")!;
    const standby = l.versions.find((v) => v.role === "standby")!;
    await exec("docker", ["stop", "-t", "2", stable.container!.id], { env: process.env });
    await waitFor(async () => (await serverUp(stable.version)) === false);
    // the standby window ends
    const ledgerFile = join(stateDir, "ledger.json");
    const data = JSON.parse(await readFile(ledgerFile, "utf8"));
    data.versions.find((v: { version: string }) => v.version === standby.version).standbyUntil = new Date(
      Date.now() - 60_000,
    ).toISOString();
    await writeFile(ledgerFile, JSON.stringify(data));

    const check = await cli(["host", "check", "--state-dir", stateDir]);
    expect(check.code, out(check)).toBe(3);
    expect(check.stdout).toMatch(/✗ stable version: .*not running/);
    expect(check.stdout).toContain(`fix: modelship rollback --to ${standby.version}`);

    // Self-healing (issue 14) would start the stopped stable again; --max-restarts 0 stands in for a stable
    // that cannot be brought back, which is the case item 6 is about.
    const { result, load } = await underLoad(() =>
      cli(["host", "repair", "--state-dir", stateDir, "--max-restarts", "0"]),
    );
    expect(result.code, out(result)).toBe(1);
    expect(out(result)).toContain(`standby ${standby.version} is kept past its window`);
    expect(out(result)).not.toContain("retired standby");
    expectNoFailures(load);
    expect(await serverUp(standby.version)).toBe(true);

    // the stable comes back: now the expired standby is retired, still without a failed request
    await exec("docker", ["start", stable.container!.id], { env: process.env });
    await waitFor(async () => (await serverUp(stable.version)) === true);
    const again = await underLoad(() => cli(["host", "repair", "--state-dir", stateDir]));
    expect(again.result.code, out(again.result)).toBe(0);
    expect(out(again.result)).toContain(`retired standby ${standby.version}`);
    expectNoFailures(again.load);
  });

  it("items 8 and 9: kill -9 in a cold rollback: check reports it, repair removes the orphan; a detached standby is re-attached; no false 'interrupted' after restoring .bak", async () => {
    const target = images.v2.version; // retired by the previous case: the rollback starts it cold
    expect((await ledger()).versions.find((v) => v.version === target)?.role).toBe("retired");
    const child: ChildProcess = spawn(
      "node",
      ["bin/modelship.js", "rollback", "--to", target, "--reason", "drill", ...sd()],
      { cwd: repoRoot, env: process.env, stdio: "ignore" },
    );
    const exited = new Promise((r) => child.once("exit", r));
    // killed while the started container gets ready: after it exists, before any traffic moved
    await waitFor(
      async () =>
        Boolean((await ledger().catch(() => null))?.versions.find((v) => v.version === target)?.container),
      120_000,
      20,
    );
    child.kill("SIGKILL");
    await exited;
    expect((await ourContainers()).some((c) => c.labels["dev.modelship.model.version"] === target)).toBe(
      true,
    );

    const check = await cli(["host", "check", "--state-dir", stateDir]);
    expect(check.code, out(check)).toBe(3);
    expect(check.stdout).toMatch(/✗ operation: rollback of .* was interrupted/);
    expect(check.stdout).toContain(`fix: modelship host repair --state-dir ${stateDir}`);

    const { result, load } = await underLoad(() => cli(["host", "repair", "--state-dir", stateDir]));
    expect(result.code, out(result)).toBe(0);
    expectNoFailures(load);
    expect((await ourContainers()).some((c) => c.labels["dev.modelship.model.version"] === target)).toBe(
      false,
    );
    expect((await Router.open(stateDir).then((r) => r.readDesired())).servers.map((s) => s.name)).toEqual([
      images.v1.version,
    ]);

    // a full rollback, then the standby is detached behind our back: repair re-attaches it
    const rb = await cli(["rollback", "--to", target, "--reason", "drill", ...sd()]);
    expect(rb.code, out(rb)).toBe(0);
    await (await Router.open(stateDir)).remove(images.v1.version);
    const re = await underLoad(() => cli(["host", "repair", "--state-dir", stateDir]));
    expect(re.result.code, out(re.result)).toBe(0);
    expect(out(re.result)).toContain(`re-attached standby ${images.v1.version}`);
    expectNoFailures(re.load);
    const desired = (await (await Router.open(stateDir)).readDesired()).servers;
    expect(desired.find((s) => s.name === images.v1.version)).toMatchObject({ backup: true });

    // a corrupt ledger: check names it; repair restores the backup without a made-up interruption
    await writeFile(join(stateDir, "ledger.json"), "{ torn");
    const corrupt = await cli(["host", "check", "--state-dir", stateDir]);
    expect(corrupt.code).toBe(3);
    expect(corrupt.stdout).toMatch(/✗ deploy ledger: .* is corrupt/);
    expect(corrupt.stdout).toContain("fix: modelship host repair");
    const restored = await cli(["host", "repair", "--state-dir", stateDir]);
    expect(restored.code, out(restored)).toBe(0);
    expect(out(restored)).toContain("restored the ledger from ledger.json.bak");
    expect(out(restored)).not.toMatch(/interrupted/);
    expect(await roles()).toEqual({ [target]: "stable", [images.v1.version]: "standby" });
  });

  it("item 8: a container of this state dir that a crash left unrecorded is removed by the next deploy", async () => {
    // what a kill -9 between `docker run` and the ledger write leaves: our labels, no ledger entry
    const { stdout } = await exec(
      "docker",
      [
        "run",
        "-d",
        "--name",
        `${PREFIX}orphan-${Date.now()}`,
        "--label",
        `dev.modelship.state-dir=${stateDir}`,
        "--label",
        "dev.modelship.role=served",
        "--label",
        `dev.modelship.model.version=${images.v1.version}`,
        images.v1.ref,
      ],
      { env: process.env },
    );
    const orphan = stdout.trim();
    const { result, load } = await underLoad(() => cli(deployArgs(images.v1.ref)));
    expect(result.code, out(result)).toBe(0);
    expect(out(result)).toMatch(/repair: removed container mstest-flt-orphan-\d+ \(unknown to the ledger\)/);
    expectNoFailures(load);
    expect(await (await testEngine()).inspectContainer(orphan)).toBeNull();
    expect(await roles()).toEqual({ [images.v1.version]: "stable", [images.v2.version]: "standby" });
  });

  it("item 5: a deploy or rollback whose edge saw failed requests exits non-zero and says how many", async () => {
    const c = await mkdtemp(join(tmpdir(), "mstest-flt-stateC-"));
    dirs.push(c);
    const url = await initHost(c);
    // a stable that answers every /predict with 500 (its health checks pass): users see failures
    const chaos = ["--env", "MODELSHIP_CHAOS_ERROR_RATE=1", "--skip-smoke"];
    const first = await cli([...deployArgs(images.v1.ref, c), ...chaos]);
    expect(first.code, out(first)).toBe(0); // no traffic meanwhile: nothing failed
    // a clean candidate replaces it under load: the rollout completes, but the edge saw failures
    const d = await underLoad(() => cli(deployArgs(images.v2.ref, c)), url);
    expect(d.load.non2xx).toBeGreaterThan(0);
    expect(d.result.code, out(d.result)).toBe(1);
    expect(d.result.stdout).toMatch(/Deployment complete, but \d+ of \d+ requests failed at the edge/);
    const m = out(d.result).match(
      new RegExp(
        `deploy of ${images.v2.version}: (\\d+) of (\\d+) requests through the edge ${url} failed meanwhile`,
      ),
    );
    expect(m, out(d.result)).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1])).toBeLessThanOrEqual(d.load.non2xx);
    expect(await roles(c)).toEqual({ [images.v2.version]: "stable", [images.v1.version]: "standby" });
    // rolling back to that failing standby under load: also not a success
    const rb = await underLoad(
      () => cli(["rollback", "--to", images.v1.version, "--reason", "drill", ...sd(c)]),
      url,
    );
    expect(rb.result.code, out(rb.result)).toBe(1);
    expect(out(rb.result)).toMatch(
      new RegExp(
        `rollback to ${images.v1.version}: [1-9]\\d* of \\d+ requests through the edge ${url} failed meanwhile`,
      ),
    );
  });

  it("item 7: B's image pruning never removes an image A's ledger references (though B built it), nor one B did not build", async () => {
    const engine = await testEngine();
    const a = await mkdtemp(join(tmpdir(), "mstest-flt-stateA-"));
    const b = await mkdtemp(join(tmpdir(), "mstest-flt-stateB-"));
    dirs.push(a, b);
    await initHost(a);
    await initHost(b);
    const keep = ["--keep-images", "1"];
    // B builds X's image I (`--model`): B's ledger records it as built here, so B may prune it
    const x = await bundleAs(await trainedBundle(), "20260201.000003", "faults");
    const xVersion = JSON.parse(await readFile(join(x, "model.json"), "utf8")).version as string;
    // The local base image as modelImage() uses it (resolved again: recreated if a run of another
    // checkout replaced it meanwhile), so the build reuses the server image the drills' images share.
    const base = await freshBaseImage();
    const built = await cli([
      "deploy",
      "--model",
      x,
      "--repository",
      "mstest-flt-prune",
      "--base-image",
      base,
      ...deployArgs(images.v1.ref, b).slice(3),
      ...keep,
    ]);
    expect(built.code, out(built)).toBe(0);
    const imageI = (await ledger(b)).versions.find((v) => v.version === xVersion)!.image;
    expect(imageI.builtHere).toBe(true);
    labelImages.push(imageI.ref);
    // A serves X from the same image I, then moves on: X is retired there (no container runs I),
    // so only A's ledger still references I
    for (const ref of [imageI.ref, images.v2.ref, images.v1.ref]) {
      const r = await cli(deployArgs(ref, a));
      expect(r.code, out(r)).toBe(0);
    }
    expect((await ledger(a)).versions.find((v) => v.version === xVersion)).toMatchObject({
      role: "retired",
      container: null,
    });
    expect((await ourContainers(a)).map((c) => c.labels["dev.modelship.model.version"])).not.toContain(
      xVersion,
    );
    // an image B did not build (its own tag, nothing else references it)
    const notBuilt = await relabel(images.v1.ref, "mstest-flt-notbuilt:1", {});
    for (const ref of [notBuilt, images.v2.ref]) {
      const r = await cli([...deployArgs(ref, b), ...keep]);
      expect(r.code, out(r)).toBe(0);
    }
    // B retired X and pruned beyond 1 image: I is kept although no container anywhere runs it
    expect((await ledger(b)).versions.find((v) => v.version === xVersion)?.role).toBe("retired");
    expect(
      (await engine.listContainers({ labels: { "dev.modelship.model.version": xVersion } })).map(
        (c) => c.image,
      ),
    ).toEqual([]);
    expect(await engine.inspectImage(imageI.ref)).not.toBeNull();
    const again = await cli([...deployArgs(imageI.ref, b), ...keep]);
    expect(again.code, out(again)).toBe(0);
    // B: X stable again, v2 standby; v1 (notBuilt) and X's first entry went through pruning at keep 1
    expect(await roles(b)).toEqual({ [xVersion]: "stable", [images.v2.version]: "standby" });
    expect((await ledger(b)).versions.find((v) => v.version === images.v1.version)?.role).toBe("retired");
    expect(await engine.inspectImage(imageI.ref)).not.toBeNull();
    expect(await engine.inspectImage(notBuilt)).not.toBeNull();
    expect((await ledger(a)).versions.find((v) => v.version === xVersion)?.image.ref).toBe(imageI.ref);
  }, 600_000);
});
