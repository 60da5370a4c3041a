import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stopSupervised } from "../src/host/setup.js";
import { probeSocket } from "../src/host/setup-facts.js";
import { repoRoot } from "./support/data.js";
import { baseImage } from "./support/images.js";

/**
 * The set-up path for real, from a state without engine: DOCKER_HOST names a socket nothing answers
 * on (a Podman service of this test's own, so the shared one other suites use is never touched);
 * `modelship host setup` plans, writes what this machine needs and starts Podman's Docker API under its
 * supervisor; the engine then runs a container. As root on Debian it must install; elsewhere it must
 * print the commands and exit 3.
 */
const bin = join(repoRoot, "bin", "modelship.js");
const dir = mkdtempSync(join(tmpdir(), "mstest-setup-"));
const socket = join(dir, "podman.sock");
const pidfile = join(dir, "podman-service.pid");
const canInstall = process.getuid?.() === 0 && existsSync("/etc/debian_version");

afterAll(async () => {
  await stopSupervised(pidfile);
  rmSync(dir, { recursive: true, force: true });
});

const setup = (args: string[]) =>
  spawnSync(process.execPath, [bin, "host", "setup", ...args], {
    encoding: "utf8",
    env: { ...process.env, DOCKER_HOST: `unix://${socket}` },
    timeout: 300_000,
  });

const events = (stdout: string) =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("modelship host setup (executor, real engine)", () => {
  it("--no-install on a host whose engine does not answer: the exact commands, exit 3, nothing started", () => {
    const r = setup(["--no-install"]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/This host needs: a container engine/);
    expect(r.stdout).toContain(`podman system service --time=0 unix://${socket}`);
    expect(r.stderr.trim()).toMatch(/^modelship: missing a container engine; --no-install was given/);
    expect(existsSync(pidfile)).toBe(false);
  });

  it.runIf(canInstall)(
    "as root on Debian: starts Podman's Docker API (supervised), which then runs containers and survives a crash",
    async () => {
      const r = setup(["--json"]);
      expect(r.status, r.stderr + r.stdout).toBe(0);
      const ev = events(r.stdout);
      const steps = ev.filter((e) => e.type === "step");
      expect(steps.every((s) => s.status === "ok")).toBe(true);
      expect(steps.map((s) => s.title)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^Host setup: start Podman's Docker API on .*supervised/),
          "Host setup: the engine answers",
        ]),
      );
      const result = ev.find((e) => e.type === "result");
      expect(result).toMatchObject({ engine: "podman", dockerHost: `unix://${socket}` });
      expect(result?.server).toMatch(/^Podman Engine \d/);

      // The engine it started runs a container (containers.conf: runtime and limits this host needs).
      const env = { ...process.env, DOCKER_HOST: `unix://${socket}` };
      const docker = (args: string[]) => execFileSync("docker", args, { env, encoding: "utf8" }).trim();
      const name = `mstest-setup-${process.pid}`;
      const script =
        "console.log('ran', /open files\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/limits','utf8'))[1])";
      let out: string;
      try {
        docker(["run", "--detach", "--name", name, "--entrypoint", "node", await baseImage(), "-e", script]);
        expect(docker(["wait", name])).toBe("0");
        out = docker(["logs", name]);
      } finally {
        spawnSync("docker", ["rm", "--force", name], { env });
      }
      expect(out).toMatch(/^ran \d+$/);

      // Supervised: the API process dies, the supervisor brings it back.
      const supervisor = Number(readFileSync(pidfile, "utf8"));
      const child = execFileSync("ps", ["-o", "pid=", "--ppid", String(supervisor)], {
        encoding: "utf8",
      }).trim();
      process.kill(Number(child), "SIGKILL");
      let back: string | null = null;
      for (let i = 0; i < 50 && !back; i++) {
        await new Promise((res) => setTimeout(res, 200));
        back = await probeSocket(socket);
      }
      expect(back).toMatch(/^Podman Engine/);

      // Idempotent: a second run finds the engine and changes nothing.
      const again = setup(["--json"]);
      expect(again.status, again.stderr).toBe(0);
      expect(events(again.stdout).find((e) => e.type === "result")).toMatchObject({
        engine: "existing",
        done: [],
      });
    },
  );

  it.skipIf(canInstall)("not root or not Debian: prints the commands and exits 3", () => {
    const r = setup([]);
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/Run:\n/);
  });
});
