import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../src/engine/engine.js";
import { ledgerSchema } from "../src/ledger/schema.js";
import { SERVED_LABELS } from "../src/rollout/wiring.js";
import { routerPaths } from "../src/router/config.js";
import { pidAlive } from "../src/util/process.js";
import { dataPath, repoRoot } from "./support/data.js";
import { ensureDockerHost } from "./support/images.js";

/**
 * `modelship demo` with real parts. The expensive path (train, image, deploy, live traffic) runs once
 * here and is interrupted with SIGINT in the middle of the journey: the demo must take everything down
 * (traffic, containers, HAProxy) and leave a valid ledger that says nothing serves. The full run to the
 * zero-drop line is test/readme.test.ts (the README's command, verbatim).
 */

const bin = join(repoRoot, "bin", "modelship.js");
/** picocolors colours output when CI is set; assertions read the plain text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what we strip
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "mstest-demo-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) {
    spawnSync(process.execPath, [bin, "demo", "--down", "--state-dir", d], { encoding: "utf8" });
    rmSync(d, { recursive: true, force: true });
  }
});

describe("modelship demo (CLI)", () => {
  it("bad flags: one line, exit 2", () => {
    for (const args of [
      ["--rps", "1"],
      ["--edge-port", "x"],
      ["--data", "/nonexistent.csv", "--no-install"],
    ]) {
      const r = spawnSync(process.execPath, [bin, "demo", "--state-dir", tempDir(), ...args], {
        encoding: "utf8",
        env: { ...process.env, MODELSHIP_DATA: "" },
        timeout: 120_000,
      });
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split("\n").at(-1)).toMatch(/^modelship: /);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  });

  it("a host without a reachable engine: prints the exact commands and stops with exit 3 (--no-install)", () => {
    const dir = tempDir();
    const r = spawnSync(process.execPath, [bin, "demo", "--no-install", "--state-dir", dir], {
      encoding: "utf8",
      env: { ...process.env, DOCKER_HOST: `unix://${join(dir, "no-engine.sock")}` },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/This host needs: a container engine/);
    expect(r.stdout).toMatch(
      /^\s+\S.*(podman system service|systemctl start docker|dockerd|apt-get install)/m,
    );
    expect(r.stderr).toMatch(/^modelship: missing a container engine; --no-install was given/m);
    expect(r.stderr).not.toMatch(/demo stopped/);
    expect(existsSync(join(dir, "ledger.json"))).toBe(false);
  });

  it("--down on a state dir that never ran a demo changes nothing", () => {
    const dir = tempDir();
    const r = spawnSync(process.execPath, [bin, "demo", "--down", "--json", "--state-dir", dir], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const result = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((e) => e.type === "result");
    expect(result).toMatchObject({ containers: [], retired: [], haproxyStopped: false });
  });

  it("Ctrl-C mid-journey (v1 live under traffic): traffic, containers and HAProxy gone, ledger valid", {
    timeout: 600_000,
  }, async () => {
    ensureDockerHost();
    const dir = tempDir();
    const child: ChildProcess = spawn(process.execPath, [bin, "demo", "--fast", "--state-dir", dir], {
      env: { ...process.env, MODELSHIP_DATA: dataPath() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += stripAnsi(d.toString());
    });
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // Wait until v1 serves and the traffic generator runs, then interrupt during v2's training.
    const deadline = Date.now() + 540_000;
    while (!out.includes("── 4.") && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 200));
    expect(out, `${out}\n${err}`).toContain("── 4.");
    const trafficPid = Number(/Starting the traffic generator.*\(pid (\d+),/.exec(out)?.[1]);
    expect(trafficPid).toBeGreaterThan(0);
    expect(pidAlive(trafficPid)).toBe(true);
    const haproxyPid = Number(readFileSync(routerPaths(dir).pidfile, "utf8").trim().split(/\s+/)[0]);
    expect(pidAlive(haproxyPid)).toBe(true);
    const engine = await Engine.connect();
    const label = { [SERVED_LABELS.stateDir]: dir };
    expect((await engine.listContainers({ labels: label, running: true })).length).toBe(1);

    await new Promise((r) => setTimeout(r, 1500));
    child.kill("SIGINT");
    const code = await exited;

    expect(code, err).toBe(130);
    expect(err).toMatch(/cleaning up/);
    expect(pidAlive(trafficPid)).toBe(false);
    expect(pidAlive(haproxyPid)).toBe(false);
    expect(await engine.listContainers({ labels: label })).toEqual([]);
    const ledger = ledgerSchema.parse(JSON.parse(readFileSync(join(dir, "ledger.json"), "utf8")));
    expect(ledger.operation).toBeNull();
    expect(ledger.versions.length).toBeGreaterThanOrEqual(1);
    for (const v of ledger.versions) {
      expect(v.role).not.toMatch(/stable|canary|standby/);
      expect(v.container).toBeNull();
    }
    expect(ledger.history.some((h) => h.kind === "retire")).toBe(true);
  });
});
