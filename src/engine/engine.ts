import type { z } from "zod";
import { CommandNotFound, runCommand } from "../util/command.js";
import { ExitCode, UserError } from "../util/errors.js";
import {
  type ContainerInspect,
  type ContainerListEntry,
  containerInspectSchema,
  containerListEntrySchema,
  type ImageInspect,
  imageInspectSchema,
  imageLayersSchema,
  versionSchema,
} from "./schema.js";

/**
 * The one place that talks to the container engine. It drives the real `docker` CLI, so it works
 * against Docker Engine and Podman's Docker-compatible service alike and honours DOCKER_HOST /
 * docker contexts exactly as the user's shell does.
 */

export type RestartPolicy = "no" | "on-failure" | "unless-stopped" | "always";

export interface RunOptions {
  image: string;
  name?: string;
  labels?: Record<string, string>;
  env?: Record<string, string>;
  /** Container port to publish on the host (TCP). */
  port?: number;
  /** Host port; 0 or undefined lets the engine pick a free one. */
  hostPort?: number;
  /** Host address the port binds to; loopback by default so only the local router reaches it. */
  hostIp?: string;
  /** Docker memory string, e.g. "512m". */
  memory?: string;
  cpus?: number;
  restart?: RestartPolicy;
  /** Seconds `docker stop` waits after SIGTERM before SIGKILL (engine default 10). */
  stopTimeoutSec?: number;
  command?: string[];
  extraArgs?: string[];
  /** Overrides of the hardening every container gets (DEFAULT_HARDENING); it cannot be switched off. */
  hardening?: Partial<ContainerHardening>;
}

/**
 * What every container modelship starts gets (CIS Docker Benchmark 5.x): a read-only root
 * filesystem with tmpfs where something must write, no Linux capabilities at all, no privilege
 * gain through setuid binaries, a process/thread cap against fork bombs, and a bounded log.
 */
export interface ContainerHardening {
  /** tmpfs mounts (path → mount options); everything else is read-only. */
  tmpfs: Record<string, string>;
  /** Processes + threads in the container (each node process runs ~11 threads). */
  pidsLimit: number;
  /** json-file log: rotate at this size (Podman 4.x: truncates at it; max-file is not honoured). */
  logMaxSize: string;
  logMaxFiles: number;
}

export const DEFAULT_HARDENING: ContainerHardening = {
  tmpfs: { "/tmp": "rw,noexec,nosuid,nodev,size=16m,mode=1777" },
  pidsLimit: 256,
  logMaxSize: "10m",
  logMaxFiles: 3,
};

const TMPFS_PATH = /^\/[A-Za-z0-9._/-]+$/;
const TMPFS_OPTIONS = /^[a-z0-9=,]+$/;

/** The `docker run` flags for a hardening; refuses a malformed tmpfs path or option list. */
export function hardeningArgs(overrides: Partial<ContainerHardening> = {}): string[] {
  const h = { ...DEFAULT_HARDENING, ...overrides };
  const args = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"];
  for (const [path, options] of Object.entries(h.tmpfs)) {
    if (!TMPFS_PATH.test(path) || path.includes("..") || !TMPFS_OPTIONS.test(options))
      throw new EngineError(`invalid tmpfs mount ${JSON.stringify(path)}:${JSON.stringify(options)}`, {
        exitCode: ExitCode.usage,
      });
    args.push("--tmpfs", `${path}:${options}`);
  }
  if (!Number.isInteger(h.pidsLimit) || h.pidsLimit < 16)
    throw new EngineError(`pids limit must be an integer >= 16, got ${h.pidsLimit}`, {
      exitCode: ExitCode.usage,
    });
  if (!/^\d+[kmg]$/.test(h.logMaxSize) || !Number.isInteger(h.logMaxFiles) || h.logMaxFiles < 1)
    throw new EngineError(`invalid log bound ${h.logMaxSize} × ${h.logMaxFiles}`, {
      exitCode: ExitCode.usage,
    });
  args.push("--pids-limit", String(h.pidsLimit));
  args.push("--log-driver", "json-file", "--log-opt", `max-size=${h.logMaxSize}`);
  args.push("--log-opt", `max-file=${h.logMaxFiles}`);
  return args;
}

export interface BuildOptions {
  context: string;
  dockerfile?: string;
  tags: string[];
  buildArgs?: Record<string, string | undefined>;
  labels?: Record<string, string>;
  target?: string;
  /** `--no-cache`: no lookup of cached steps (Podman's lookup scans every child of the base image). */
  noCache?: boolean;
  /** Each line of the engine's build output, as it arrives. */
  onProgress?: (line: string) => void;
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  status: string;
  running: boolean;
  restarting: boolean;
  oomKilled: boolean;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** "healthy" | "unhealthy" | "starting"; null when the image has no health check or it never ran. */
  health: string | null;
  restartCount: number;
  labels: Record<string, string>;
  user: string;
  /** Published host ports keyed by "8080/tcp". */
  ports: Record<string, { hostIp: string; hostPort: number }[]>;
  raw: ContainerInspect;
}

export interface ImageInfo {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  sizeBytes: number;
  created: string | null;
  user: string;
  labels: Record<string, string>;
  healthcheck: string[] | null;
  raw: ImageInspect;
}

export interface ImageLayers {
  id: string;
  /** `repository:tag` (Podman's `localhost/` and `docker.io/library/` prefixes dropped). */
  tags: string[];
  layers: string[];
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  state: string;
  status: string;
  labels: Record<string, string>;
}

export interface EngineInfo {
  /** "Docker Engine", "Podman Engine", … */
  server: string;
  serverVersion: string;
  apiVersion: string | null;
  podman: boolean;
  host: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

// Only failures to reach the engine itself: a registry refusing a connection is another problem.
const UNREACHABLE =
  /cannot connect to the docker daemon|is the docker daemon running|error during connect|permission denied while trying to connect to the docker (daemon|api)/i;

export class EngineError extends UserError {
  override name = "EngineError";
}

/** Where the CLI will connect: DOCKER_HOST, else the CLI's own default. */
export function engineHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST || "unix:///var/run/docker.sock (docker default)";
}

function unreachableError(detail: string): EngineError {
  return new EngineError(`container engine not reachable at ${engineHost()}: ${firstLine(detail)}`, {
    exitCode: ExitCode.environment,
    hint:
      "start Docker (`sudo systemctl start docker`) or Podman's Docker API (`podman system service --time=0 unix:///run/podman/podman.sock &`), " +
      "then set DOCKER_HOST to its socket (e.g. `export DOCKER_HOST=unix:///run/podman/podman.sock`; or let `sudo npx modelship host setup` install and start one)",
  });
}

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? "(no output)"
  );
}

function parseJson<S extends z.ZodType>(schema: S, text: string, what: string): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new EngineError(`${what}: the engine returned output that is not JSON: ${firstLine(text)}`, {
      exitCode: ExitCode.environment,
    });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EngineError(
      `${what}: unexpected engine output (${issue?.path.join(".") || "?"}: ${issue?.message ?? "invalid"})`,
      { exitCode: ExitCode.environment },
    );
  }
  return parsed.data;
}

function labelArgs(flag: string, map: Record<string, string | undefined> | undefined): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(map ?? {})) if (v !== undefined) args.push(flag, `${k}=${v}`);
  return args;
}

function parseLabelString(
  labels: string | Record<string, string> | null | undefined,
): Record<string, string> {
  if (!labels) return {};
  if (typeof labels !== "string") return labels;
  const out: Record<string, string> = {};
  for (const pair of labels.split(",")) {
    const eq = pair.indexOf("=");
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export class Engine {
  readonly bin: string;
  private readonly env: NodeJS.ProcessEnv;
  private infoCache: EngineInfo | undefined;

  constructor(options: { bin?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.bin = options.bin ?? process.env.MODELSHIP_DOCKER_BIN ?? "docker";
    this.env = { ...process.env, ...options.env };
  }

  /** An engine that answered a version query; throws exit-3 UserError with the fix otherwise. */
  static async connect(options: { bin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Engine> {
    const engine = new Engine(options);
    await engine.info();
    return engine;
  }

  /** Runs the CLI; never throws for a non-zero exit (callers decide), only when it cannot start. */
  async exec(
    args: string[],
    options: {
      input?: string;
      timeoutMs?: number;
      onLine?: (line: string) => void;
      env?: NodeJS.ProcessEnv;
    } = {},
  ): Promise<ExecResult> {
    try {
      const r = await runCommand(this.bin, args, {
        env: { ...this.env, ...options.env },
        ...(options.input !== undefined ? { input: options.input } : {}),
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        ...(options.onLine ? { onLine: options.onLine } : {}),
      });
      const stderr = r.timedOut ? `${r.stderr}\n(timed out after ${options.timeoutMs} ms)` : r.stderr;
      return { stdout: r.stdout, stderr, code: r.code ?? 1 };
    } catch (err) {
      if (err instanceof CommandNotFound && err.code === "ENOENT")
        throw new EngineError(`the '${this.bin}' CLI is not installed or not on PATH`, {
          exitCode: ExitCode.environment,
          hint: "install the Docker CLI (Debian: `apt-get install docker.io` or docker-ce-cli); it also drives Podman through DOCKER_HOST",
        });
      throw err;
    }
  }

  /** Runs the CLI and returns stdout; a failure becomes an EngineError naming the operation. */
  async run(what: string, args: string[], options: Parameters<Engine["exec"]>[1] = {}): Promise<string> {
    const result = await this.exec(args, options);
    if (result.code !== 0) throw this.failure(what, result);
    return result.stdout;
  }

  private failure(what: string, result: ExecResult): EngineError {
    const text = `${result.stderr}\n${result.stdout}`;
    if (UNREACHABLE.test(text)) return unreachableError(text);
    const clean = (out: string) =>
      out
        .split("\n")
        .map((l) => l.trim())
        .filter(
          (l) =>
            l.length > 0 &&
            !/^DEPRECATED|^Install the buildx|^BuildKit is currently|environment-variable\.$/i.test(l),
        );
    // The CLI prints its error last on stderr; progress goes to stdout.
    const stderr = clean(result.stderr);
    const telling = /error|failed|denied|not found|no such|refused|unauthorized|timed? ?out|invalid/i;
    const line = stderr.filter((l) => telling.test(l)).pop() ?? stderr.pop() ?? clean(result.stdout).pop();
    const message = (line ?? `exit ${result.code}`).replace(/^Error( response from daemon)?:\s*/i, "");
    return new EngineError(`${what} failed: ${message}`, { exitCode: ExitCode.environment });
  }

  /** Whether the engine answers right now (never cached): tells an engine outage from a container's own failure. */
  async answers(): Promise<boolean> {
    const result = await this.exec(["version", "--format", "{{.Server.Version}}"], { timeoutMs: 15_000 });
    return result.code === 0 && result.stdout.trim() !== "";
  }

  async info(): Promise<EngineInfo> {
    if (this.infoCache) return this.infoCache;
    const result = await this.exec(["version", "--format", "{{json .}}"], { timeoutMs: 15_000 });
    // The CLI prints the client half and exits 1 when the server is unreachable.
    if (result.code !== 0) {
      if (UNREACHABLE.test(result.stderr) || result.stderr.includes("timed out"))
        throw unreachableError(result.stderr);
      throw this.failure("docker version", result);
    }
    const v = parseJson(versionSchema, result.stdout, "docker version");
    if (!v.Server) throw unreachableError("the CLI got no server version");
    const component = v.Server.Components?.[0]?.Name ?? v.Server.Platform?.Name ?? "Docker Engine";
    this.infoCache = {
      server: component,
      serverVersion: v.Server.Version,
      apiVersion: v.Server.ApiVersion ?? null,
      podman: /podman/i.test(component),
      host: engineHost(this.env),
    };
    return this.infoCache;
  }

  // ---- images ----------------------------------------------------------------------------------

  /** Builds an image; returns its id. The classic builder is used against Podman (no BuildKit). */
  async build(options: BuildOptions): Promise<{ imageId: string; log: string }> {
    const info = await this.info();
    const [firstTag] = options.tags;
    if (!firstTag) throw new EngineError("docker build needs at least one tag", { exitCode: ExitCode.usage });
    const args = ["build", "--pull=false"];
    if (options.dockerfile) args.push("--file", options.dockerfile);
    for (const tag of options.tags) args.push("--tag", tag);
    args.push(...labelArgs("--build-arg", options.buildArgs));
    args.push(...labelArgs("--label", options.labels));
    if (options.target) args.push("--target", options.target);
    if (options.noCache) args.push("--no-cache");
    args.push(options.context);
    const env = info.podman ? { DOCKER_BUILDKIT: "0" } : {};
    const result = await this.exec(args, { onLine: options.onProgress ?? (() => {}), env });
    if (result.code !== 0) throw this.failure("docker build", result);
    const image = await this.inspectImage(firstTag);
    if (!image) throw new EngineError(`docker build reported success but ${firstTag} does not exist`);
    return { imageId: image.id, log: `${result.stdout}${result.stderr}` };
  }

  async inspectImage(ref: string): Promise<ImageInfo | null> {
    const result = await this.exec(["image", "inspect", ref]);
    if (result.code !== 0) {
      if (/no such (image|object)|not found|image not known/i.test(result.stderr)) return null;
      throw this.failure(`docker image inspect ${ref}`, result);
    }
    const [raw] = parseJson(imageInspectSchema.array().min(1), result.stdout, `docker image inspect ${ref}`);
    const image = raw as ImageInspect;
    return {
      id: image.Id.startsWith("sha256:") ? image.Id : `sha256:${image.Id}`,
      repoTags: image.RepoTags ?? [],
      repoDigests: image.RepoDigests ?? [],
      sizeBytes: image.Size,
      created: image.Created ?? null,
      user: image.Config?.User ?? "",
      labels: image.Config?.Labels ?? {},
      healthcheck: image.Config?.Healthcheck?.Test ?? (await this.healthcheckFromHistory(ref)),
      raw: image,
    };
  }

  /**
   * Podman's Docker API leaves Healthcheck out of `image inspect` (the image has it); the newest
   * HEALTHCHECK instruction in the image history is the same information.
   */
  private async healthcheckFromHistory(ref: string): Promise<string[] | null> {
    const result = await this.exec(["history", "--no-trunc", "--format", "{{.CreatedBy}}", ref]);
    if (result.code !== 0) return null;
    const line = result.stdout.split("\n").find((l) => /\bHEALTHCHECK\b/.test(l));
    if (!line || /HEALTHCHECK\s+NONE/.test(line)) return null;
    const cmd = /\sCMD\s+(.*)$/.exec(line)?.[1]?.trim();
    if (!cmd) return null;
    if (cmd.startsWith("[")) {
      try {
        return ["CMD", ...(JSON.parse(cmd) as string[])];
      } catch {
        return null;
      }
    }
    return ["CMD-SHELL", cmd];
  }

  /** `repository:tag` of every tagged local image of a repository (Podman's `localhost/` prefix dropped). */
  async listImageTags(repository: string): Promise<string[]> {
    const result = await this.exec(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    if (result.code !== 0) throw this.failure("docker image ls", result);
    return [
      ...new Set(
        result.stdout
          .split("\n")
          .map((l) => l.trim().replace(/^(localhost|docker\.io\/library)\//, ""))
          .filter((l) => l.startsWith(`${repository}:`) && !l.endsWith(":<none>")),
      ),
    ];
  }

  /**
   * Every image with its layers (diff ids, base first): an image built `FROM` another starts with all
   * of the other's layers. One `image ls` and one `image inspect` (in batches); an image removed in
   * between is left out.
   */
  async listImageLayers(): Promise<ImageLayers[]> {
    const ls = await this.exec(["image", "ls", "--quiet", "--no-trunc"]);
    if (ls.code !== 0) throw this.failure("docker image ls", ls);
    const ids = [
      ...new Set(
        ls.stdout
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean),
      ),
    ];
    const out: ImageLayers[] = [];
    for (let i = 0; i < ids.length; i += 200) {
      const batch = ids.slice(i, i + 200);
      const result = await this.exec(["image", "inspect", ...batch]);
      const gone = /no such (image|object)|not found|image not known/i;
      if (result.code !== 0 && !(gone.test(result.stderr) && result.stdout.trim().startsWith("[")))
        throw this.failure("docker image inspect", result);
      for (const image of parseJson(imageLayersSchema.array(), result.stdout, "docker image inspect"))
        out.push({
          id: image.Id.startsWith("sha256:") ? image.Id : `sha256:${image.Id}`,
          tags: (image.RepoTags ?? []).map((t) => t.replace(/^(localhost|docker\.io\/library)\//, "")),
          layers: image.RootFS?.Layers ?? [],
        });
    }
    return out;
  }

  /** Pulls an image (`docker pull`); the engine's error when the registry cannot be reached. */
  async pull(ref: string): Promise<void> {
    const result = await this.exec(["pull", ref], { timeoutMs: 600_000 });
    if (result.code !== 0) throw this.failure(`docker pull ${ref}`, result);
  }

  async tagImage(source: string, target: string): Promise<void> {
    await this.run(`docker tag ${source} ${target}`, ["tag", source, target]);
  }

  async removeImage(ref: string, options: { force?: boolean } = {}): Promise<void> {
    const result = await this.exec(["image", "rm", ...(options.force ? ["--force"] : []), ref]);
    if (result.code !== 0 && !/no such image|not known|not found/i.test(result.stderr))
      throw this.failure(`docker image rm ${ref}`, result);
  }

  /** Logs in with the password on stdin (never on the command line, where `ps` would show it). */
  async login(registry: string, username: string, password: string): Promise<void> {
    const result = await this.exec(["login", registry, "--username", username, "--password-stdin"], {
      input: password,
      timeoutMs: 60_000,
    });
    if (result.code !== 0) {
      const err = this.failure(`docker login ${registry}`, result);
      throw new EngineError(err.message, {
        exitCode: ExitCode.environment,
        hint: "check the registry host, user name and token (GHCR: a token with write:packages)",
      });
    }
  }

  /**
   * Removes the stored credentials of a registry (the CLI keeps them in $DOCKER_CONFIG/config.json
   * until then). Not being logged in is fine.
   */
  async logout(registry: string): Promise<void> {
    const result = await this.exec(["logout", registry], { timeoutMs: 30_000 });
    if (result.code !== 0 && !/not logged in/i.test(`${result.stdout}${result.stderr}`))
      throw this.failure(`docker logout ${registry}`, result);
  }

  /** Pushes a tag; returns the registry digest the engine reported (sha256:…), when it did. */
  async push(ref: string, onProgress?: (line: string) => void): Promise<{ digest: string | null }> {
    const result = await this.exec(["push", ref], { onLine: onProgress ?? (() => {}) });
    if (result.code !== 0) throw this.failure(`docker push ${ref}`, result);
    const match = /digest: (sha256:[0-9a-f]{64})/i.exec(`${result.stdout}\n${result.stderr}`);
    if (match?.[1]) return { digest: match[1] };
    const image = await this.inspectImage(ref);
    const repo = ref.replace(/:[^/:]+$/, "");
    const repoDigest = image?.repoDigests.find((d) => d.startsWith(`${repo}@`));
    return { digest: repoDigest ? repoDigest.slice(repoDigest.indexOf("@") + 1) : null };
  }

  // ---- containers ------------------------------------------------------------------------------

  /** Creates and starts a detached container; returns its id. */
  async runContainer(options: RunOptions): Promise<string> {
    const args = ["run", "--detach", ...hardeningArgs(options.hardening)];
    if (options.name) args.push("--name", options.name);
    args.push(...labelArgs("--label", options.labels));
    args.push(...labelArgs("--env", options.env));
    if (options.port !== undefined) {
      const hostIp = options.hostIp ?? "127.0.0.1";
      const hostPort = options.hostPort ? String(options.hostPort) : "";
      args.push("--publish", `${hostIp}:${hostPort}:${options.port}/tcp`);
    }
    if (options.memory) args.push("--memory", options.memory);
    if (options.cpus) args.push("--cpus", String(options.cpus));
    if (options.restart) args.push("--restart", options.restart);
    if (options.stopTimeoutSec !== undefined) args.push("--stop-timeout", String(options.stopTimeoutSec));
    args.push(...(options.extraArgs ?? []), options.image, ...(options.command ?? []));
    const stdout = await this.run(`docker run ${options.image}`, args);
    const id = stdout.trim().split("\n").pop()?.trim() ?? "";
    if (!/^[0-9a-f]{12,64}$/.test(id))
      throw new EngineError(`docker run ${options.image}: no container id in the output`);
    return id;
  }

  async inspectContainer(nameOrId: string): Promise<ContainerState | null> {
    const result = await this.exec(["container", "inspect", nameOrId]);
    if (result.code !== 0) {
      if (/no such (container|object)|not found|no container with/i.test(result.stderr)) return null;
      throw this.failure(`docker inspect ${nameOrId}`, result);
    }
    const [raw] = parseJson(
      containerInspectSchema.array().min(1),
      result.stdout,
      `docker inspect ${nameOrId}`,
    );
    const c = raw as ContainerInspect;
    const health = c.State.Health ?? c.State.Healthcheck;
    const ports: ContainerState["ports"] = {};
    for (const [key, bindings] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
      ports[key] = (bindings ?? [])
        .filter((b) => b.HostPort)
        .map((b) => ({ hostIp: b.HostIp ?? "", hostPort: Number(b.HostPort) }));
    }
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ""),
      image: c.Config.Image ?? c.Image,
      status: c.State.Status,
      running: c.State.Running,
      restarting: c.State.Restarting ?? false,
      oomKilled: c.State.OOMKilled ?? false,
      exitCode: c.State.ExitCode ?? null,
      startedAt: c.State.StartedAt ?? null,
      finishedAt: c.State.FinishedAt ?? null,
      health: health?.Status ? health.Status : null,
      restartCount: c.RestartCount ?? 0,
      labels: c.Config.Labels ?? {},
      user: c.Config.User ?? "",
      ports,
      raw: c,
    };
  }

  /** The host port a container port is published on. */
  async hostPort(nameOrId: string, containerPort: number): Promise<number> {
    const state = await this.inspectContainer(nameOrId);
    if (!state)
      throw new EngineError(`container ${nameOrId} does not exist`, { exitCode: ExitCode.environment });
    const binding = state.ports[`${containerPort}/tcp`]?.[0];
    if (!binding)
      throw new EngineError(`container ${nameOrId} does not publish port ${containerPort}`, {
        exitCode: ExitCode.environment,
      });
    return binding.hostPort;
  }

  /** SIGTERM, then SIGKILL after `timeoutSec` (the server drains in that window). */
  async stop(nameOrId: string, options: { timeoutSec?: number } = {}): Promise<void> {
    const args = ["stop", "--time", String(options.timeoutSec ?? 10), nameOrId];
    const result = await this.exec(args);
    if (result.code !== 0 && !/no such container|not found|no container with/i.test(result.stderr))
      throw this.failure(`docker stop ${nameOrId}`, result);
  }

  async kill(nameOrId: string, signal = "KILL"): Promise<void> {
    await this.run(`docker kill ${nameOrId}`, ["kill", "--signal", signal, nameOrId]);
  }

  async start(nameOrId: string): Promise<void> {
    await this.run(`docker start ${nameOrId}`, ["start", nameOrId]);
  }

  /** Removes a container; absent is fine (idempotent cleanup). */
  async remove(nameOrId: string, options: { force?: boolean } = {}): Promise<void> {
    const result = await this.exec(["rm", ...(options.force ? ["--force"] : []), nameOrId]);
    if (result.code !== 0 && !/no such container|not found|no container with/i.test(result.stderr))
      throw this.failure(`docker rm ${nameOrId}`, result);
  }

  /** The last `tail` lines of stdout+stderr. */
  async logs(nameOrId: string, options: { tail?: number } = {}): Promise<string> {
    const result = await this.exec(["logs", "--tail", String(options.tail ?? 50), nameOrId]);
    if (result.code !== 0) throw this.failure(`docker logs ${nameOrId}`, result);
    return `${result.stdout}${result.stderr}`;
  }

  /** Containers carrying all the given labels (running and stopped unless `running`). */
  async listContainers(
    options: { labels?: Record<string, string | true>; running?: boolean } = {},
  ): Promise<ContainerSummary[]> {
    const args = ["ps", "--no-trunc", "--format", "{{json .}}"];
    if (!options.running) args.push("--all");
    for (const [k, v] of Object.entries(options.labels ?? {}))
      args.push("--filter", v === true ? `label=${k}` : `label=${k}=${v}`);
    const stdout = await this.run("docker ps", args);
    return stdout
      .split("\n")
      .filter((l) => l.trim().startsWith("{"))
      .map((line) => {
        const e: ContainerListEntry = parseJson(containerListEntrySchema, line, "docker ps");
        const name = Array.isArray(e.Names) ? (e.Names[0] ?? "") : e.Names;
        return {
          id: e.ID,
          name: name.replace(/^\//, ""),
          image: e.Image,
          state: e.State ?? "",
          status: e.Status ?? "",
          labels: parseLabelString(e.Labels),
        };
      });
  }

  /** Runs a command inside a running container. */
  async execIn(nameOrId: string, command: string[], options: { user?: string } = {}): Promise<ExecResult> {
    return this.exec(["exec", ...(options.user ? ["--user", options.user] : []), nameOrId, ...command]);
  }
}
