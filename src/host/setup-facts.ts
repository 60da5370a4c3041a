import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { request } from "node:http";
import { runCommand } from "../util/command.js";
import { CONTAINERS_CONF, type HostFacts, PODMAN_SOCKET } from "./setup-plan.js";

/** Where a Docker API usually listens when DOCKER_HOST is not set, in the order we prefer them. */
export const KNOWN_SOCKETS = [PODMAN_SOCKET, "/var/run/docker.sock", "/run/podman/podman.sock"];

export async function onPath(cmd: string): Promise<boolean> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(cmd)) return false;
  const found = await runCommand("sh", ["-c", `command -v ${cmd}`]).then(
    (r) => r.code === 0,
    () => false,
  );
  return found || existsSync(`/usr/sbin/${cmd}`) || existsSync(`/sbin/${cmd}`);
}

/** GET `path` on a Docker API unix socket; null when nothing answers within `timeoutMs`. */
export function socketGet(socketPath: string, path: string, timeoutMs = 3000): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method: "GET", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve(res.statusCode === 200 ? body : null));
      res.on("error", () => resolve(null));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
    req.end();
  });
}

/** What answers the Docker API on this unix socket ("Podman Engine 4.3.1"), or null. */
export async function probeSocket(socketPath: string, timeoutMs = 3000): Promise<string | null> {
  if (!existsSync(socketPath)) return null;
  const ping = await socketGet(socketPath, "/_ping", timeoutMs);
  if (ping === null) return null;
  // /version is slower than /_ping on a busy Podman service: give it longer before naming no version.
  const version = await socketGet(socketPath, "/version", Math.max(timeoutMs, 10_000));
  if (version === null) return "Docker API (version did not answer)";
  try {
    const v = JSON.parse(version ?? "{}") as { Version?: string; Components?: { Name?: string }[] };
    return `${v.Components?.[0]?.Name ?? "Docker Engine"} ${v.Version ?? "?"}`;
  } catch {
    return "Docker API";
  }
}

/** The engine modelship would use: DOCKER_HOST when set (only it), else the first known socket answering. */
export async function findEngine(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ dockerHost: string; server: string } | null> {
  const explicit = env.DOCKER_HOST;
  if (explicit) {
    if (!explicit.startsWith("unix://")) {
      // tcp:// and ssh:// hosts: ask the CLI, which knows how to reach them.
      const r = await runCommand("docker", ["version", "--format", "{{.Server.Version}}"], {
        env,
        timeoutMs: 15_000,
      }).catch(() => null);
      return r?.code === 0 ? { dockerHost: explicit, server: `Docker API ${r.stdout.trim()}` } : null;
    }
    const server = await probeSocket(explicit.slice("unix://".length));
    return server ? { dockerHost: explicit, server } : null;
  }
  for (const sock of KNOWN_SOCKETS) {
    const server = await probeSocket(sock);
    if (server) return { dockerHost: `unix://${sock}`, server };
  }
  return null;
}

async function haproxyVersion(): Promise<string | null> {
  for (const bin of ["haproxy", "/usr/sbin/haproxy"]) {
    const r = await runCommand(bin, ["-v"]).catch(() => null);
    const m = /version (\d+\.\d+(?:\.\S+)?)/.exec(r?.stdout ?? "");
    if (m?.[1]) return m[1];
  }
  return null;
}

async function osName(): Promise<string> {
  const text = await readFile("/etc/os-release", "utf8").catch(() => "");
  const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text);
  return m?.[1] ?? process.platform;
}

async function nofileHard(): Promise<number | null> {
  const text = await readFile("/proc/self/limits", "utf8").catch(() => "");
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(text);
  if (!m?.[1]) return null;
  return m[1] === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

/** Reads the machine. Side effects: none (probes sockets, runs `--version`-like commands). */
export async function gatherHostFacts(
  options: { extras?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<HostFacts> {
  const env = options.env ?? process.env;
  const [dockerCli, dockerd, podman, runc, apt, haproxy, engine, name, nofile, conf] = await Promise.all([
    onPath("docker"),
    onPath("dockerd"),
    onPath("podman"),
    onPath("runc"),
    onPath("apt-get"),
    haproxyVersion(),
    findEngine(env),
    osName(),
    nofileHard(),
    readFile(CONTAINERS_CONF, "utf8").catch(() => null),
  ]);
  const missingExtras: string[] = [];
  for (const cmd of options.extras ?? []) if (!(await onPath(cmd))) missingExtras.push(cmd);
  return {
    debian: process.platform === "linux" && existsSync("/etc/debian_version") && apt,
    osName: name,
    root: process.getuid?.() === 0,
    systemd: existsSync("/run/systemd/system"),
    inContainer: existsSync("/.dockerenv") || existsSync("/run/.containerenv"),
    cgroup: existsSync("/sys/fs/cgroup/cgroup.controllers") ? "v2" : "v1",
    nofileHard: nofile,
    dockerCli,
    dockerd,
    podman,
    runc,
    haproxy,
    engine,
    dockerHostEnv: env.DOCKER_HOST || null,
    containersConf: conf,
    missingExtras,
    dockerFailed: false,
  };
}
