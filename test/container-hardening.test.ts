import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import type { ModelCard } from "../src/contracts/card.js";
import { type ContainerState, DEFAULT_HARDENING, type Engine, hardeningArgs } from "../src/engine/engine.js";
import { PREDICTION_LOG_DIR } from "../src/image/build.js";
import type { RunningContainer } from "../src/rollout/ports.js";
import { rolloutSettingsSchema } from "../src/rollout/settings.js";
import { engineContainers } from "../src/rollout/wiring.js";
import { trainedBundle } from "./support/bundle.js";
import { modelImage, testEngine } from "./support/images.js";
import { postJson, request } from "./support/serving.js";

/**
 * Issue 10 item 10: a serving container started the way `modelship deploy` starts it (the rollout's
 * engine port, real Podman/Docker, the real model image) is hardened — and still serves.
 */

const suffix = randomBytes(3).toString("hex");
const WORKERS = 2;
// Capabilities a default container keeps: Podman's inspect lists them under CapDrop for `--cap-drop ALL`.
const DEFAULT_CAPS = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "NET_BIND_SERVICE",
  "SETGID",
  "SETUID",
];

describe("a deployed serving container is hardened (real engine, real image)", () => {
  let engine: Engine;
  let card: ModelCard;
  let stateDir: string;
  let running: RunningContainer | undefined;
  let ports: ReturnType<typeof engineContainers>;
  let state: ContainerState;
  let url: string;

  const inContainer = async (script: string) => {
    const r = await engine.execIn(running!.id, ["node", "-e", script]);
    return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
  };

  beforeAll(async () => {
    engine = await testEngine();
    const dir = await trainedBundle();
    card = (await readBundle(dir)).card;
    const image = await modelImage(dir);
    stateDir = await mkdtemp(join(tmpdir(), "mstest-hardening-"));
    const settings = rolloutSettingsSchema.parse({
      container: { namePrefix: `mstest-hardening-${suffix}-`, workers: WORKERS },
    });
    ports = engineContainers(engine, stateDir, settings);
    running = await ports.start({
      version: card.version,
      image: { ref: image.ref, digest: null },
      model: { name: card.name, version: card.version, sha256: card.model.sha256 },
      card,
      env: {
        MODELSHIP_PREDICTION_LOG: `${PREDICTION_LOG_DIR}/predictions.jsonl`,
        MODELSHIP_PREDICTION_LOG_SAMPLE: "1",
        MODELSHIP_DRIFT_FLUSH_MS: "100",
      },
    });
    await ports.waitReady(running, 60_000);
    state = (await engine.inspectContainer(running.id))!;
    url = `http://127.0.0.1:${running.hostPort}`;
  }, 180_000);

  afterAll(async () => {
    if (running) await ports.stopAndRemove(running);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("docker inspect: read-only root, tmpfs, no capabilities, no-new-privileges, pids limit, bounded json-file log", () => {
    const host = state.raw.HostConfig!;
    expect(host.ReadonlyRootfs).toBe(true);
    expect(Object.keys(host.Tmpfs ?? {})).toEqual(expect.arrayContaining(["/tmp", PREDICTION_LOG_DIR]));
    expect(host.Tmpfs?.[PREDICTION_LOG_DIR]).toMatch(/noexec/);
    // Docker Engine reports ["ALL"]; Podman expands ALL into the capabilities it removed.
    const dropped = host.CapDrop ?? [];
    if (!dropped.includes("ALL")) expect(dropped).toEqual(expect.arrayContaining(DEFAULT_CAPS));
    expect(host.CapAdd ?? []).toEqual([]);
    expect(host.SecurityOpt).toContainEqual(expect.stringMatching(/^no-new-privileges(:true)?$/));
    expect(host.PidsLimit).toBe(64 + 24 * (WORKERS + 1));
    expect(host.LogConfig?.Type).toBe("json-file");
    // Docker Engine echoes the options; Podman's compat inspect leaves them out (the size is proven below).
    if (host.LogConfig?.Config?.["max-size"]) {
      expect(host.LogConfig.Config).toMatchObject({ "max-size": "10m", "max-file": "3" });
    }
  });

  it("inside: no effective or bounding capabilities, NoNewPrivs set, uid 1000, root filesystem read-only", async () => {
    const status = await inContainer(
      "process.stdout.write(require('fs').readFileSync('/proc/1/status','utf8'))",
    );
    expect(status.out).toMatch(/^CapEff:\s+0+$/m);
    expect(status.out).toMatch(/^CapBnd:\s+0+$/m);
    expect(status.out).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status.out).toMatch(/^Uid:\s+1000\s/m);
    // The root filesystem is mounted read-only (files the node user could write by mode would be EROFS).
    const mounts = await inContainer(
      "process.stdout.write(require('fs').readFileSync('/proc/self/mounts','utf8'))",
    );
    const root = mounts.out.split("\n").find((l) => l.split(" ")[1] === "/");
    expect(root?.split(" ")[3]?.split(",")).toContain("ro");
    for (const path of ["/app/dist/serving/main.js", "/model/model.onnx", "/etc/passwd", "/new-file"]) {
      const r = await inContainer(
        `try{require('fs').appendFileSync(${JSON.stringify(path)},'x');process.stdout.write('written')}catch(e){process.stdout.write(e.code)}`,
      );
      expect(r.out, path).toMatch(/^(EROFS|EACCES)$/);
    }
    const tmp = await inContainer("require('fs').writeFileSync('/tmp/t','1');process.stdout.write('ok')");
    expect(tmp.out).toBe("ok");
  });

  it("still serves: /predict, the golden answers, and the prediction log on its tmpfs", async () => {
    const example = card.golden[0]!;
    const res = await postJson(`${url}/predict`, { text: example.input });
    expect(res.status, res.text).toBe(200);
    expect((res.json() as { sentiment: string }).sentiment).toBe(example.expected.label);
    const drift = await request(`${url}/drift`);
    expect(drift.status, drift.text).toBe(200);
    let lines = "";
    for (let i = 0; i < 50 && !lines.includes(example.expected.label); i++) {
      await new Promise((r) => setTimeout(r, 100));
      lines = (
        await inContainer(
          `try{process.stdout.write(require('fs').readFileSync('${PREDICTION_LOG_DIR}/predictions.jsonl','utf8'))}catch(e){}`,
        )
      ).out;
    }
    expect(JSON.parse(lines.split("\n")[0]!)).toMatchObject({
      version: card.version,
      label: example.expected.label,
    });
  });

  it("samples its access log (about 1 line per 100 requests) instead of one line per request", async () => {
    const before = (await engine.logs(running!.id, { tail: 100_000 }))
      .split("\n")
      .filter((l) => l.includes('"msg":"request"')).length;
    for (let i = 0; i < 300; i++) expect((await request(`${url}/health`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    const after = (await engine.logs(running!.id, { tail: 100_000 }))
      .split("\n")
      .filter((l) => l.includes('"msg":"request"')).length;
    // Binomial(300, 0.01): mean 3; more than 20 happens by chance far less than once in 10^9 runs.
    expect(after - before).toBeLessThanOrEqual(20);
  });

  it("its log file stays under max-size when 12 MiB are written to it", async () => {
    expect(DEFAULT_HARDENING.logMaxSize).toBe("10m");
    const logPath = state.raw.LogPath;
    expect(logPath, "the engine reports where the container log lives").toBeTruthy();
    // Write straight into the server's stdout (the container log), 12 × 1 MiB of lines.
    const fill = await inContainer(
      "const fs=require('fs');const fd=fs.openSync('/proc/1/fd/1','a');const line='x'.repeat(1023)+'\\n';const mb=line.repeat(1024);for(let i=0;i<12;i++)fs.writeSync(fd,mb);process.stdout.write('filled')",
    );
    expect(fill.out, fill.err).toBe("filled");
    await new Promise((r) => setTimeout(r, 1000));
    const size = (await stat(logPath!)).size;
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(10 * 1024 * 1024 + 64 * 1024);
    // The server is still fine after its log was cut.
    expect((await request(`${url}/ready`)).status).toBe(200);
  });
});

describe("hardening flags", () => {
  it("are always on and refuse a malformed tmpfs mount, pids limit or log bound", () => {
    const args = hardeningArgs();
    for (const flag of [
      "--read-only",
      "ALL",
      "no-new-privileges",
      "--pids-limit",
      "max-size=10m",
      "max-file=3",
    ])
      expect(args).toContain(flag);
    expect(() => hardeningArgs({ tmpfs: { "/tmp:/etc": "rw" } })).toThrow(/invalid tmpfs/);
    expect(() => hardeningArgs({ tmpfs: { "/tmp": "rw,exec --privileged" } })).toThrow(/invalid tmpfs/);
    expect(() => hardeningArgs({ tmpfs: { "/../etc": "rw" } })).toThrow(/invalid tmpfs/);
    expect(() => hardeningArgs({ pidsLimit: 0 })).toThrow(/pids limit/);
    expect(() => hardeningArgs({ logMaxSize: "lots" })).toThrow(/invalid log bound/);
  });
});
