import { existsSync } from "node:fs";
import { Engine } from "../../engine/engine.js";
import { CommandFailed, runChecked, startDetached, tail } from "../../util/command.js";
import { ExitCode, UserError } from "../../util/errors.js";
import type { Reporter } from "../../util/progress.js";

/** Where the engine's Docker API usually listens when DOCKER_HOST is not set. */
const KNOWN_SOCKETS = ["/run/modelship/podman.sock", "/var/run/docker.sock", "/run/podman/podman.sock"];
/** The socket we start Podman's Docker-compatible service on (the same as .ci/setup-host.sh). */
export const PODMAN_SOCKET = "/run/modelship/podman.sock";
const HAPROXY_BIN = "/usr/sbin/haproxy";

export interface HostFacts {
  root: boolean;
  apt: boolean;
  systemd: boolean;
  dockerCli: boolean;
  podman: boolean;
  dockerd: boolean;
  engineAnswers: boolean;
  engineDetail: string;
  haproxy: boolean;
}

/** A fix: the shell command a human would type, and whether it starts a service (runs detached). */
export interface FixCommand {
  why: string;
  command: string;
  /** Set DOCKER_HOST to this after running it. */
  dockerHost?: string;
  background?: boolean;
}

async function onPath(cmd: string): Promise<boolean> {
  try {
    await runChecked("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** Points DOCKER_HOST at a socket that exists when the user did not choose one. */
export function pickDockerHost(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DOCKER_HOST) return env.DOCKER_HOST;
  const sock = KNOWN_SOCKETS.find((s) => existsSync(s));
  if (sock && sock !== "/var/run/docker.sock") env.DOCKER_HOST = `unix://${sock}`;
  return env.DOCKER_HOST;
}

export async function gatherFacts(): Promise<HostFacts> {
  pickDockerHost();
  const [dockerCli, podman, dockerd, systemd] = await Promise.all([
    onPath("docker"),
    onPath("podman"),
    onPath("dockerd"),
    Promise.resolve(existsSync("/run/systemd/system")),
  ]);
  let engineAnswers = false;
  let engineDetail = "docker CLI not installed";
  if (dockerCli) {
    try {
      const info = await new Engine().info();
      engineAnswers = true;
      engineDetail = `${info.server} ${info.serverVersion} at ${info.host}`;
    } catch (err) {
      engineDetail = err instanceof Error ? err.message : String(err);
    }
  }
  return {
    root: process.getuid?.() === 0,
    apt: existsSync("/etc/debian_version") && (await onPath("apt-get")),
    systemd,
    dockerCli,
    podman,
    dockerd,
    engineAnswers,
    engineDetail,
    haproxy: existsSync(HAPROXY_BIN) || (await onPath("haproxy")),
  };
}

/** What is missing, as the exact commands that fix it on Debian/Ubuntu (in order). */
export function planFixes(f: HostFacts): FixCommand[] {
  const fixes: FixCommand[] = [];
  const apt = (pkgs: string) => `apt-get install -y --no-install-recommends ${pkgs}`;
  const needs: string[] = [];
  if (!f.haproxy) needs.push("haproxy");
  // docker.io ships the docker CLI (which modelship drives) and the Docker daemon.
  if (!f.engineAnswers && !f.dockerCli) needs.push("docker.io");
  if (needs.length) {
    fixes.push({ why: "package lists", command: "apt-get update" });
    fixes.push({ why: `install ${needs.join(", ")}`, command: apt(needs.join(" ")) });
  }
  if (!f.engineAnswers) {
    // An installed Podman is used through its Docker-compatible API; otherwise the Docker daemon.
    const docker = !f.podman && (f.dockerd || needs.includes("docker.io"));
    if (docker && f.systemd) fixes.push({ why: "start Docker", command: "systemctl start docker" });
    else if (docker)
      fixes.push({
        why: "start Docker",
        command: "dockerd >/var/log/dockerd.log 2>&1 &",
        background: true,
      });
    else if (f.podman)
      fixes.push({
        why: "start Podman's Docker-compatible API",
        command: `mkdir -p /run/modelship && podman system service --time=0 unix://${PODMAN_SOCKET} >/run/modelship/podman-service.log 2>&1 &`,
        background: true,
        dockerHost: `unix://${PODMAN_SOCKET}`,
      });
  }
  return fixes;
}

async function waitForEngine(ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      await new Engine().info();
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  return false;
}

/**
 * Step 1 of the demo: a Docker-API engine and HAProxy. As root on Debian/Ubuntu the missing parts are
 * installed and started; everywhere else the exact commands are printed and the demo stops (exit 3).
 */
export async function ensureHost(reporter: Reporter, opts: { install: boolean }): Promise<HostFacts> {
  let facts = await gatherFacts();
  let fixes = planFixes(facts);
  if (fixes.length === 0) return facts;
  const canInstall = opts.install && facts.root && facts.apt;
  if (!canInstall) {
    const why = !opts.install
      ? "--no-install was given"
      : !facts.root
        ? "not running as root"
        : "this is not a Debian/Ubuntu host with apt-get";
    const missing = [
      ...(facts.haproxy ? [] : ["HAProxy"]),
      ...(facts.engineAnswers ? [] : ["a container engine"]),
    ];
    const sudo = facts.root ? "" : "sudo ";
    const lines = fixes.map((f) => `  ${sudo}${f.command}`);
    const hosts = fixes.filter((f) => f.dockerHost).map((f) => `  export DOCKER_HOST=${f.dockerHost}`);
    const engineWhy = facts.engineAnswers ? "" : ` (${facts.engineDetail})`;
    reporter.info(
      `This host needs: ${missing.join(" and ")}${engineWhy}. Run:\n${[...lines, ...hosts].join("\n")}`,
    );
    throw new UserError(`missing ${missing.join(" and ")}; ${why}, so the demo did not install it`, {
      exitCode: ExitCode.environment,
      hint: "run the commands above, then `npm run demo` again",
    });
  }
  for (const fix of fixes) {
    await reporter.step(`Host setup: ${fix.why}`, async () => {
      if (fix.background) {
        await startDetached("sh", ["-c", fix.command]);
      } else {
        await runChecked("sh", ["-c", fix.command], {
          env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
          maxBuffer: 64 * 1024 * 1024,
        }).catch((err: Error) => {
          const last = (err instanceof CommandFailed ? tail(err.result) : "") || err.message;
          throw new UserError(`\`${fix.command}\` failed: ${last}`, { exitCode: ExitCode.environment });
        });
      }
      if (fix.dockerHost) process.env.DOCKER_HOST = fix.dockerHost;
      return fix.command;
    });
  }
  if (!(await waitForEngine(20_000))) {
    facts = await gatherFacts();
    throw new UserError(`the container engine still does not answer: ${facts.engineDetail}`, {
      exitCode: ExitCode.environment,
    });
  }
  facts = await gatherFacts();
  fixes = planFixes(facts);
  if (fixes.length)
    throw new UserError(`host setup incomplete: still needed: ${fixes.map((f) => f.why).join(", ")}`, {
      exitCode: ExitCode.environment,
    });
  return facts;
}
