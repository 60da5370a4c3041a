import { z } from "zod";

/**
 * Host set-up as a pure decision: facts about the machine in, an ordered plan of steps out. The same
 * plan drives `modelship host setup`, `host init --install`, the demo's host step and `.ci/setup-host.sh`
 * (through `host setup`), and is printed as exact shell commands when it cannot run (not root, not
 * Debian). Gathering facts (setup-facts.ts) and running steps (setup.ts) live elsewhere.
 */

export const MIN_HAPROXY: readonly [number, number] = [2, 6];

/** The default place we start Podman's Docker-compatible API (also where tests and the demo look). */
export const PODMAN_SOCKET = "/run/modelship/podman.sock";
/** Our containers.conf drop-in (Podman ≥ 4 reads /etc/containers/containers.conf.d/*.conf). */
export const CONTAINERS_CONF = "/etc/containers/containers.conf.d/50-modelship.conf";
export const PODMAN_UNIT = "modelship-podman.service";
/** Podman restarts `--restart always` containers at boot through this unit (shipped with podman). */
export const PODMAN_RESTART_UNIT = "podman-restart.service";
/** Podman's own default nofile/nproc limits are 1048576/4194304; a lower hard limit makes runc fail. */
const PODMAN_DEFAULT_NOFILE = 1_048_576;

export const hostFactsSchema = z.object({
  /** /etc/debian_version and apt-get: we know how to install here. */
  debian: z.boolean(),
  /** "Debian GNU/Linux 12 (bookworm)", "macOS", … for messages. */
  osName: z.string(),
  root: z.boolean(),
  /** systemd is PID 1 (/run/systemd/system exists). */
  systemd: z.boolean(),
  /** Inside a container (/.dockerenv, /run/.containerenv): a Docker daemon cannot start here. */
  inContainer: z.boolean(),
  /** "v2" only on a pure cgroup v2 host; crun fails on hybrid/v1 hierarchies, runc does not. */
  cgroup: z.enum(["v1", "v2"]),
  /** Hard RLIMIT_NOFILE of this process (null: unknown). */
  nofileHard: z.number().int().nullable(),
  dockerCli: z.boolean(),
  dockerd: z.boolean(),
  podman: z.boolean(),
  runc: z.boolean(),
  /** Installed HAProxy version "2.6.12", or null when absent. */
  haproxy: z.string().nullable(),
  /** An engine answered the Docker API: where (DOCKER_HOST form) and what it is. */
  engine: z.object({ dockerHost: z.string(), server: z.string() }).nullable(),
  /** DOCKER_HOST chosen by the user (we honour it and never pick another engine). */
  dockerHostEnv: z.string().nullable(),
  /** Current content of our containers.conf drop-in (null: absent). */
  containersConf: z.string().nullable(),
  /** Commands missing from PATH among the extra ones asked for (wrk, promtool, …). */
  missingExtras: z.array(z.string()),
  /** The Docker daemon was started by an earlier pass of this plan and never answered. */
  dockerFailed: z.boolean().default(false),
});
export type HostFacts = z.infer<typeof hostFactsSchema>;

export interface SetupOptions {
  /** Unix socket for Podman's Docker API (default: DOCKER_HOST's unix path, else PODMAN_SOCKET). */
  socket?: string;
  /** Extra commands the caller needs, as command → Debian package (CI: wrk, prometheus). */
  extras?: Record<string, string>;
  /** Group given access to the engine socket (the runner's), when we start the engine. */
  socketGroup?: string;
}

export type SetupStep =
  | { kind: "apt-update"; why: string; command: string }
  | { kind: "apt-install"; why: string; command: string; packages: string[] }
  | { kind: "write-file"; why: string; command: string; path: string; content: string }
  | { kind: "systemctl"; why: string; command: string; args: string[] }
  | {
      kind: "service";
      why: string;
      command: string;
      /** The program the supervisor keeps running (restarted when it exits). */
      argv: string[];
      socket: string;
      log: string;
      pidfile: string;
    }
  | { kind: "wait-engine"; why: string; command: string; dockerHost: string; socketGroup?: string };

export interface SetupPlan {
  engine: "existing" | "docker" | "podman";
  /** What DOCKER_HOST must be for modelship and the tests once the plan ran. */
  dockerHost: string;
  steps: SetupStep[];
  /** Human sentences: why this engine, what is already fine. */
  notes: string[];
}

export const CONTAINERS_CONF_HEADER =
  "# Written by `modelship host setup`: settings this machine needs for Podman's containers.\n";

/** The drop-in for this host, or null when Podman's defaults work here. */
export function renderContainersConf(f: HostFacts): string | null {
  const runc = f.cgroup !== "v2" || f.inContainer;
  const ulimits = f.nofileHard !== null && f.nofileHard < PODMAN_DEFAULT_NOFILE;
  if (!runc && !ulimits) return null;
  const lines = [CONTAINERS_CONF_HEADER.trimEnd()];
  if (runc) {
    lines.push("# crun fails on hybrid/v1 cgroup hierarchies and in nested containers; runc works.");
    lines.push("[engine]", 'runtime = "runc"', "");
  }
  if (ulimits) {
    const nofile = Math.min(16_384, f.nofileHard ?? 16_384);
    lines.push(`# This host cannot raise RLIMIT_NOFILE above ${f.nofileHard}: fixed container limits.`);
    lines.push("[containers]", `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=8192:8192"]`, "");
  }
  return `${lines.join("\n").trimEnd()}\n`;
}

export function parseVersion(v: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

export function haproxyOk(version: string | null): boolean {
  if (!version) return false;
  const [major, minor] = parseVersion(version);
  return major > MIN_HAPROXY[0] || (major === MIN_HAPROXY[0] && minor >= MIN_HAPROXY[1]);
}

const unixPath = (dockerHost: string | null) =>
  dockerHost?.startsWith("unix://") ? dockerHost.slice("unix://".length) : undefined;

export function podmanUnit(socket: string, socketGroup?: string): string {
  const dir = socket.slice(0, socket.lastIndexOf("/")) || "/";
  const group = socketGroup
    ? `# The runner's group may use the engine (the socket is root's otherwise).
ExecStartPost=/bin/sh -c 'for i in $(seq 100); do [ -S ${socket} ] && break; sleep 0.1; done; chgrp ${socketGroup} ${socket} && chmod 660 ${socket}'
`
    : "";
  return `# Generated by \`modelship host setup\`: Podman's Docker-compatible API on ${socket}.
[Unit]
Description=Podman Docker API for modelship (${socket})
After=network-online.target
Wants=network-online.target

[Service]
ExecStartPre=/bin/mkdir -p ${dir}
ExecStartPre=/bin/rm -f ${socket}
ExecStart=/usr/bin/podman system service --time=0 unix://${socket}
${group}Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`;
}

/**
 * The plan for this host. Decision order: an engine that answers is used as is; else the Docker daemon
 * when one is (or is about to be) installed and can start here (systemd, not in a container, not
 * failed before); else Podman's Docker API with the containers.conf this machine needs, under systemd
 * when it runs and under our own supervisor otherwise. HAProxy ≥ 2.6 and the caller's extras are
 * installed with apt when missing.
 */
export function planSetup(f: HostFacts, options: SetupOptions = {}): SetupPlan {
  const steps: SetupStep[] = [];
  const notes: string[] = [];
  const packages: string[] = [];
  const need = (pkg: string) => {
    if (!packages.includes(pkg)) packages.push(pkg);
  };

  if (!haproxyOk(f.haproxy)) need("haproxy");
  else notes.push(`HAProxy ${f.haproxy} installed`);
  for (const cmd of f.missingExtras) need(options.extras?.[cmd] ?? cmd);

  // modelship drives the docker CLI (against Docker or Podman's Docker API); Debian ships it in docker.io.
  if (!f.dockerCli) need("docker.io");
  const socket = options.socket ?? unixPath(f.dockerHostEnv) ?? PODMAN_SOCKET;
  let engine: SetupPlan["engine"];
  let dockerHost: string;
  const engineSteps: SetupStep[] = [];
  const dockerdWillExist = f.dockerd || !f.dockerCli;
  const dockerCanStart = f.systemd && !f.inContainer && !f.dockerFailed;
  // An explicit socket (option or DOCKER_HOST) that is not Docker's: only Podman can be started there.
  const askedForSocket = socket !== PODMAN_SOCKET && socket !== "/var/run/docker.sock";

  if (f.engine) {
    engine = "existing";
    dockerHost = f.engine.dockerHost;
    notes.push(`${f.engine.server} answers at ${f.engine.dockerHost}`);
  } else if (dockerdWillExist && dockerCanStart && !askedForSocket) {
    engine = "docker";
    dockerHost = "unix:///var/run/docker.sock";
    notes.push("Docker daemon: systemd runs it");
    engineSteps.push({
      kind: "systemctl",
      why: "start the Docker daemon (and at boot)",
      command: "systemctl enable --now docker",
      args: ["enable", "--now", "docker"],
    });
  } else {
    engine = "podman";
    dockerHost = `unix://${socket}`;
    notes.push(
      f.dockerFailed
        ? "Podman's Docker API: the Docker daemon did not start"
        : dockerdWillExist && f.inContainer
          ? "Podman's Docker API: a Docker daemon cannot run inside this container"
          : dockerdWillExist && !f.systemd
            ? "Podman's Docker API: no systemd to run the Docker daemon"
            : "Podman's Docker API: no Docker daemon installed",
    );
    if (!f.podman) need("podman");
    const conf = renderContainersConf(f);
    if (conf && !f.runc) need("runc");
    if (conf && conf !== f.containersConf)
      engineSteps.push({
        kind: "write-file",
        why: "containers.conf for this machine (runtime, ulimits)",
        command: `mkdir -p ${CONTAINERS_CONF.slice(0, CONTAINERS_CONF.lastIndexOf("/"))} && cat > ${CONTAINERS_CONF} <<'EOF'\n${conf}EOF`,
        path: CONTAINERS_CONF,
        content: conf,
      });
    if (f.systemd) {
      const unit = `/etc/systemd/system/${PODMAN_UNIT}`;
      const content = podmanUnit(socket, options.socketGroup);
      engineSteps.push({
        kind: "write-file",
        why: `systemd unit for Podman's Docker API on ${socket}`,
        command: `cat > ${unit} <<'EOF'\n${content}EOF`,
        path: unit,
        content,
      });
      engineSteps.push({
        kind: "systemctl",
        why: "reload systemd units",
        command: "systemctl daemon-reload",
        args: ["daemon-reload"],
      });
      engineSteps.push({
        kind: "systemctl",
        why: "start Podman's Docker API (and at boot)",
        command: `systemctl enable --now ${PODMAN_UNIT}`,
        args: ["enable", "--now", PODMAN_UNIT],
      });
      engineSteps.push({
        kind: "systemctl",
        why: "restart `--restart always` containers at boot",
        command: `systemctl enable ${PODMAN_RESTART_UNIT}`,
        args: ["enable", PODMAN_RESTART_UNIT],
      });
    } else {
      const dir = socket.slice(0, socket.lastIndexOf("/")) || "/";
      const log = `${dir}/podman-service.log`;
      const pidfile = `${dir}/podman-service.pid`;
      const argv = ["podman", "system", "service", "--time=0", `unix://${socket}`];
      engineSteps.push({
        kind: "service",
        why: `start Podman's Docker API on ${socket} (supervised: restarted when it exits)`,
        command: `mkdir -p ${dir} && nohup sh -c 'while :; do ${argv.join(" ")}; sleep 1; done' >>${log} 2>&1 & echo $! >${pidfile}`,
        argv,
        socket,
        log,
        pidfile,
      });
    }
  }

  if (packages.length) {
    steps.push({ kind: "apt-update", why: "package lists", command: "apt-get update" });
    steps.push({
      kind: "apt-install",
      why: `install ${packages.join(", ")}`,
      command: `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages.join(" ")}`,
      packages,
    });
  }
  steps.push(...engineSteps);
  if (engine !== "existing")
    steps.push({
      kind: "wait-engine",
      why: "the engine answers",
      command: `export DOCKER_HOST=${dockerHost}; docker version`,
      dockerHost,
      ...(options.socketGroup && engine === "podman" && !f.systemd
        ? { socketGroup: options.socketGroup }
        : {}),
    });
  return { engine, dockerHost, steps, notes };
}

/** Why the plan cannot run here (null: it can). */
export function blocker(f: HostFacts): string | null {
  if (!f.debian) return `this is not a Debian/Ubuntu host with apt-get (${f.osName})`;
  if (!f.root) return "not running as root";
  return null;
}

/** The plan as commands a human runs (with sudo when not root). */
export function planCommands(plan: SetupPlan, f: HostFacts): string[] {
  const sudo = f.root ? "" : "sudo ";
  return plan.steps.map((s) => {
    if (s.kind === "wait-engine") return s.command;
    if (s.kind === "write-file" || s.kind === "service") return `${sudo}sh -c ${shellQuote(s.command)}`;
    return `${sudo}${s.command}`;
  });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
