import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  blocker,
  CONTAINERS_CONF,
  type HostFacts,
  PODMAN_SOCKET,
  planCommands,
  planSetup,
  podmanUnit,
  renderContainersConf,
} from "../src/host/setup-plan.js";

/**
 * The set-up decision for each host shape. Pure: facts in, plan out. (test/host-setup.test.ts runs the
 * executor for real against a Podman service of its own.)
 */

/** A fresh Debian box of the kind this project runs on: docker CLI, no daemon, no Podman, no HAProxy. */
const fresh: HostFacts = {
  debian: true,
  osName: "Debian GNU/Linux 12 (bookworm)",
  root: true,
  systemd: false,
  inContainer: true,
  cgroup: "v1",
  nofileHard: 20_000,
  dockerCli: true,
  dockerd: false,
  podman: false,
  runc: false,
  haproxy: null,
  engine: null,
  dockerHostEnv: null,
  containersConf: null,
  missingExtras: [],
  dockerFailed: false,
};
/** A real server: systemd, cgroup v2, high limits. */
const server: HostFacts = {
  ...fresh,
  systemd: true,
  inContainer: false,
  cgroup: "v2",
  nofileHard: 1_048_576,
  dockerCli: false,
  haproxy: "2.6.12",
};
const kinds = (plan: ReturnType<typeof planSetup>) => plan.steps.map((s) => s.kind);
const commands = (plan: ReturnType<typeof planSetup>) => plan.steps.map((s) => s.command);

describe("planSetup: which engine, which steps", () => {
  it("an engine already answers and HAProxy 2.6 is there: nothing to do", () => {
    const plan = planSetup({
      ...fresh,
      haproxy: "2.6.12",
      engine: { dockerHost: `unix://${PODMAN_SOCKET}`, server: "Podman Engine 4.3.1" },
    });
    expect(plan.steps).toEqual([]);
    expect(plan.engine).toBe("existing");
    expect(plan.dockerHost).toBe(`unix://${PODMAN_SOCKET}`);
  });

  it("Docker daemon available (installed, systemd, not in a container): systemd starts Docker", () => {
    const plan = planSetup({ ...server, dockerCli: true, dockerd: true });
    expect(plan.engine).toBe("docker");
    expect(plan.dockerHost).toBe("unix:///var/run/docker.sock");
    expect(commands(plan)).toEqual([
      "systemctl enable --now docker",
      expect.stringContaining("docker version"),
    ]);
  });

  it("no docker CLI on a systemd server: apt installs docker.io (CLI + daemon) and systemd starts it", () => {
    const plan = planSetup(server);
    expect(plan.engine).toBe("docker");
    expect(plan.steps[1]).toMatchObject({ kind: "apt-install", packages: ["docker.io"] });
    expect(kinds(plan)).toEqual(["apt-update", "apt-install", "systemctl", "wait-engine"]);
  });

  it("Docker failed to start before: the same server falls back to Podman under systemd", () => {
    const plan = planSetup({ ...server, dockerCli: true, dockerd: true, dockerFailed: true });
    expect(plan.engine).toBe("podman");
    expect(plan.notes.join()).toMatch(/did not start/);
    const unit = plan.steps.find((s) => s.kind === "write-file" && s.path.endsWith(".service"));
    expect(unit).toMatchObject({ path: "/etc/systemd/system/modelship-podman.service" });
    expect(commands(plan)).toContain("systemctl enable --now modelship-podman.service");
    expect(commands(plan)).toContain("systemctl enable podman-restart.service");
    // cgroup v2, high limits: Podman's defaults work, no containers.conf.
    expect(plan.steps.some((s) => s.kind === "write-file" && s.path === CONTAINERS_CONF)).toBe(false);
  });

  it("neither engine, no systemd, in a container (this sandbox): apt podman+runc+haproxy, containers.conf, supervised service", () => {
    const plan = planSetup(fresh);
    expect(plan.engine).toBe("podman");
    expect(plan.dockerHost).toBe(`unix://${PODMAN_SOCKET}`);
    expect(kinds(plan)).toEqual(["apt-update", "apt-install", "write-file", "service", "wait-engine"]);
    expect(plan.steps[1]).toMatchObject({ packages: ["haproxy", "podman", "runc"] });
    const conf = plan.steps[2];
    expect(conf).toMatchObject({ path: CONTAINERS_CONF });
    expect(conf?.kind === "write-file" && conf.content).toMatch(/runtime = "runc"/);
    expect(conf?.kind === "write-file" && conf.content).toMatch(/default_ulimits = \["nofile=16384:16384"/);
    expect(plan.steps[3]).toMatchObject({
      kind: "service",
      argv: ["podman", "system", "service", "--time=0", `unix://${PODMAN_SOCKET}`],
    });
  });

  it("Podman only (installed, service not running): no apt, just the service; conf already right is not rewritten", () => {
    const facts = { ...fresh, podman: true, runc: true, haproxy: "2.6.12" };
    const conf = renderContainersConf(facts);
    const plan = planSetup({ ...facts, containersConf: conf });
    expect(kinds(plan)).toEqual(["service", "wait-engine"]);
  });

  it("DOCKER_HOST names a unix socket: Podman is started there, never another engine", () => {
    const plan = planSetup({
      ...fresh,
      podman: true,
      runc: true,
      haproxy: "2.6.12",
      dockerHostEnv: "unix:///tmp/x/podman.sock",
    });
    expect(plan.dockerHost).toBe("unix:///tmp/x/podman.sock");
    expect(plan.steps.find((s) => s.kind === "service")).toMatchObject({ socket: "/tmp/x/podman.sock" });
  });

  it("HAProxy older than 2.6 is upgraded; extras (CI: wrk, promtool) map to their packages", () => {
    const plan = planSetup(
      {
        ...fresh,
        haproxy: "2.4.22",
        engine: { dockerHost: "unix:///var/run/docker.sock", server: "Docker Engine 24" },
        missingExtras: ["wrk", "promtool"],
      },
      { extras: { wrk: "wrk", promtool: "prometheus" } },
    );
    expect(plan.steps[1]).toMatchObject({ packages: ["haproxy", "wrk", "prometheus"] });
  });

  it("not root: the plan is printed with sudo, and refused", () => {
    const facts = { ...fresh, root: false };
    expect(blocker(facts)).toBe("not running as root");
    const lines = planCommands(planSetup(facts), facts);
    expect(lines[0]).toBe("sudo apt-get update");
    expect(lines[1]).toMatch(/^sudo DEBIAN_FRONTEND=noninteractive apt-get install .*haproxy podman runc$/);
    expect(lines.at(-1)).toBe(`export DOCKER_HOST=unix://${PODMAN_SOCKET}; docker version`);
  });

  it("not Debian: refused with the reason", () => {
    expect(blocker({ ...fresh, debian: false, osName: "Fedora Linux 40" })).toMatch(/not a Debian.*Fedora/);
    expect(blocker(fresh)).toBeNull();
  });

  it("the printed commands are real shell: the containers.conf and service lines parse", () => {
    const facts = { ...fresh, root: false };
    for (const line of planCommands(planSetup(facts), facts)) {
      const r = spawnSync("bash", ["-n", "-c", line], { encoding: "utf8" });
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
    }
  });
});

describe("renderContainersConf / podmanUnit", () => {
  it("Podman's defaults work on a cgroup v2 host with high limits: no drop-in", () => {
    expect(renderContainersConf(server)).toBeNull();
    expect(renderContainersConf({ ...server, nofileHard: 4096 })).toMatch(/nofile=4096:4096/);
  });

  it("the systemd unit for Podman's API verifies (systemd-analyze) and hands the socket to a group", () => {
    const unit = podmanUnit("/run/modelship/podman.sock", "runner");
    expect(unit).toMatch(/chgrp runner \/run\/modelship\/podman.sock/);
    const which = spawnSync("sh", ["-c", "command -v systemd-analyze"]);
    if (which.status !== 0) return; // verified where systemd-analyze exists (Debian CI host has it)
    const dir = mkdtempSync(join(tmpdir(), "mstest-unit-"));
    try {
      const path = join(dir, "modelship-podman.service");
      writeFileSync(path, unit);
      const r = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
      // verify also complains about the host (no /usr/bin/podman in a chroot, etc.): only our file counts
      const ours = r.stderr
        .split("\n")
        .filter((l) => l.includes(path) && !/Command .* is not executable/.test(l));
      expect(ours).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
