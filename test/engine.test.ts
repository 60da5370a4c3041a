import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, EngineError } from "../src/engine/engine.js";
import { ExitCode } from "../src/util/errors.js";
import { repoRoot } from "./support/data.js";
import { baseImage, testEngine } from "./support/images.js";

const run = promisify(execFile);
const suffix = randomBytes(3).toString("hex");
const runLabel = { "dev.modelship.test": `engine-${suffix}` };

// A tiny HTTP server that answers with its env and exits 0 on SIGTERM after saying so.
const SERVER = `
const http = require("http");
const s = http.createServer((q, r) => r.end(JSON.stringify({ greeting: process.env.GREETING, uid: process.getuid() })));
s.listen(8080, () => console.log("listening"));
process.on("SIGTERM", () => { console.log("got SIGTERM"); s.close(() => process.exit(0)); });
`;

describe("container engine wrapper (real engine)", () => {
  let engine: Engine;
  let base: string;
  const names: string[] = [];
  const name = (n: string) => {
    const full = `mstest-engine-${n}-${suffix}`;
    names.push(full);
    return full;
  };

  beforeAll(async () => {
    engine = await testEngine();
    base = await baseImage();
  });

  afterAll(async () => {
    for (const n of names) await engine?.remove(n, { force: true });
    await engine?.removeImage(`mstest-engine-tag:${suffix}`);
  });

  it("reports which engine it talks to", async () => {
    const info = await engine.info();
    expect(info.serverVersion).toMatch(/^\d+\.\d+/);
    expect(info.host).toBe(process.env.DOCKER_HOST);
  });

  it("runs a container with labels, env, limits, restart policy and a loopback port the engine picked", async () => {
    const n = name("web");
    const id = await engine.runContainer({
      image: base,
      name: n,
      labels: { ...runLabel, "dev.modelship.role": "probe" },
      env: { GREETING: "hello from env" },
      port: 8080,
      memory: "128m",
      cpus: 0.5,
      restart: "unless-stopped",
      command: ["node", "-e", SERVER],
    });
    expect(id).toMatch(/^[0-9a-f]{64}$/);

    const state = await engine.inspectContainer(n);
    expect(state).not.toBeNull();
    expect(state?.id).toBe(id);
    expect(state?.name).toBe(n);
    expect(state?.running).toBe(true);
    expect(state?.labels["dev.modelship.role"]).toBe("probe");
    expect(state?.raw.HostConfig?.Memory).toBe(128 * 1024 * 1024);
    expect(state?.raw.HostConfig?.NanoCpus).toBe(500_000_000);
    expect(state?.raw.HostConfig?.RestartPolicy?.Name).toBe("unless-stopped");
    // Every container is hardened (DEFAULT_HARDENING): read-only root, tmpfs /tmp, no capabilities.
    expect(state?.raw.HostConfig?.ReadonlyRootfs).toBe(true);
    expect(Object.keys(state?.raw.HostConfig?.Tmpfs ?? {})).toContain("/tmp");
    expect(state?.raw.HostConfig?.PidsLimit).toBe(256);
    expect(state?.raw.HostConfig?.SecurityOpt).toContainEqual(expect.stringMatching(/^no-new-privileges/));
    expect(state?.raw.HostConfig?.LogConfig?.Type).toBe("json-file");
    const binding = state?.ports["8080/tcp"]?.[0];
    expect(binding?.hostIp).toBe("127.0.0.1");

    const port = await engine.hostPort(n, 8080);
    expect(port).toBe(binding?.hostPort);
    let body: { greeting?: string } = {};
    for (let i = 0; i < 100; i++) {
      try {
        body = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as typeof body;
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(body.greeting).toBe("hello from env");

    const listed = await engine.listContainers({ labels: { ...runLabel, "dev.modelship.role": "probe" } });
    expect(listed.map((c) => c.name)).toEqual([n]);
    expect(listed[0]?.labels["dev.modelship.role"]).toBe("probe");
    expect(await engine.listContainers({ labels: { ...runLabel, "dev.modelship.role": "nope" } })).toEqual(
      [],
    );

    // stop = SIGTERM with a grace period: the process sees it and exits cleanly.
    await engine.stop(n, { timeoutSec: 5 });
    const stopped = await engine.inspectContainer(n);
    expect(stopped?.running).toBe(false);
    expect(stopped?.exitCode).toBe(0);
    expect(await engine.logs(n, { tail: 1 })).toContain("got SIGTERM");
    expect(await engine.logs(n, { tail: 10 })).toContain("listening");

    await engine.remove(n);
    expect(await engine.inspectContainer(n)).toBeNull();
    // Removing what is already gone is not an error (idempotent cleanup).
    await engine.remove(n);
  });

  it("publishes on a given host port", async () => {
    const probe = (await import("node:net")).createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, "127.0.0.1", () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise((r) => probe.close(r));
    const n = name("fixed");
    await engine.runContainer({
      image: base,
      name: n,
      port: 8080,
      hostPort: port,
      command: ["node", "-e", SERVER],
    });
    expect(await engine.hostPort(n, 8080)).toBe(port);
    await engine.remove(n, { force: true });
  });

  it("inspects, tags and removes images", async () => {
    const image = await engine.inspectImage(base);
    expect(image?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(image?.sizeBytes).toBeGreaterThan(50e6);
    await engine.tagImage(base, `mstest-engine-tag:${suffix}`);
    expect((await engine.inspectImage(`mstest-engine-tag:${suffix}`))?.id).toBe(image?.id);
    await engine.removeImage(`mstest-engine-tag:${suffix}`);
    expect(await engine.inspectImage(`mstest-engine-tag:${suffix}`)).toBeNull();
    // The base itself survives removing one of its tags.
    expect(await engine.inspectImage(base)).not.toBeNull();
  });

  it("reports an unreachable registry on login and push as such (not as an unreachable engine)", async () => {
    const login = await engine.login("127.0.0.1:9", "mstest", "not-a-real-token").catch((e: unknown) => e);
    expect(login).toBeInstanceOf(EngineError);
    expect((login as EngineError).message).toMatch(/^docker login 127\.0\.0\.1:9 failed: .*127\.0\.0\.1:9/);
    expect((login as EngineError).message).not.toContain("not-a-real-token");
    expect((login as EngineError).hint).toMatch(/registry host, user name and token/);

    const ref = `127.0.0.1:9/mstest/engine:${suffix}`;
    await engine.tagImage(base, ref);
    try {
      const push = await engine.push(ref).catch((e: unknown) => e);
      expect(push).toBeInstanceOf(EngineError);
      expect((push as EngineError).message).toMatch(
        /^docker push 127\.0\.0\.1:9\/mstest\/engine:\w+ failed: .*connection refused/,
      );
      expect((push as EngineError).message).not.toMatch(/container engine not reachable/);
    } finally {
      await engine.removeImage(ref);
    }
  });

  it("logout removes the registry token the CLI stored, and is fine when not logged in", async () => {
    const config = await mkdtemp(join(tmpdir(), "mstest-docker-config-"));
    try {
      const auth = Buffer.from("mstest:not-a-real-token").toString("base64");
      const stored = { auths: { "127.0.0.1:9": { auth }, "other.example:5000": { auth } } };
      await writeFile(join(config, "config.json"), JSON.stringify(stored));
      const scoped = new Engine({ env: { DOCKER_CONFIG: config } });
      await scoped.logout("127.0.0.1:9");
      const after = await readFile(join(config, "config.json"), "utf8");
      expect(after).not.toContain("127.0.0.1:9");
      expect(JSON.parse(after).auths).toEqual({ "other.example:5000": { auth } });
      await scoped.logout("127.0.0.1:9"); // again: not logged in is not an error
    } finally {
      await rm(config, { recursive: true, force: true });
    }
  });

  it("turns engine failures into one readable line", async () => {
    const err = await engine
      .runContainer({ image: `mstest-does-not-exist:${suffix}`, name: name("missing"), command: ["true"] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as Error).message).toMatch(/^docker run mstest-does-not-exist:\w+ failed: /);
    expect((err as Error).message).not.toContain("\n");
  });

  it("says how to fix an unreachable engine (exit 3)", async () => {
    const err = await Engine.connect({ env: { DOCKER_HOST: "unix:///nonexistent/modelship.sock" } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).exitCode).toBe(ExitCode.environment);
    expect((err as EngineError).message).toContain("unix:///nonexistent/modelship.sock");
    expect((err as EngineError).hint).toMatch(/podman system service/);
    expect((err as EngineError).hint).toMatch(/DOCKER_HOST/);
  });

  it("the CLI exits 3 with the fix when the engine is unreachable", async () => {
    const result = await run("node", [join(repoRoot, "bin", "modelship.js"), "build", "--model", repoRoot], {
      env: { ...process.env, DOCKER_HOST: "unix:///nonexistent/modelship.sock" },
    }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(3);
    const lines = result.stderr.trim().split("\n");
    expect(lines.at(-1)).toMatch(
      /container engine not reachable at unix:\/\/\/nonexistent\/modelship\.sock.*DOCKER_HOST/,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("says when the docker CLI is missing (exit 3)", async () => {
    const err = await Engine.connect({ bin: "docker-not-installed-mstest" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).exitCode).toBe(ExitCode.environment);
    expect((err as EngineError).message).toContain("not installed");
  });
});
