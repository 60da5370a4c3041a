import { randomBytes } from "node:crypto";
import { stripVTControlCharacters } from "node:util";
import { readBundle } from "../bundle/read.js";
import type { ModelCard } from "../contracts/card.js";
import { type ContainerHardening, DEFAULT_HARDENING, Engine, type RunOptions } from "../engine/engine.js";
import { formatSmokeReport, runSmokeTest, type SmokeResult, waitForReady } from "../smoke/smoke.js";
import { runChecked } from "../util/command.js";
import { ExitCode, UserError } from "../util/errors.js";
import { Reporter } from "../util/progress.js";
import { assertBundleDir, stageModelContext } from "./context.js";
import { imageLabels, MODEL_LABELS } from "./labels.js";
import { type ServerImage, withServerImage } from "./server.js";

/** The official Node image the Dockerfile defaults to (see serving/Dockerfile). */
export const DEFAULT_BASE_IMAGE = "node:20-bookworm-slim";
export const SERVER_PORT = 8080;
/** Writable (tmpfs) in a server container: where MODELSHIP_PREDICTION_LOG files go. */
export const PREDICTION_LOG_DIR = "/var/log/modelship";

/**
 * The hardening of a model server container on top of the engine's defaults: a 64 MiB tmpfs for the
 * prediction log (the default log rotates at 5 × 10 MiB), and a pids limit from the worker count —
 * each node process runs about 12 threads, plus the health check's and `docker exec`'s.
 */
export function serverHardening(workers: number): Partial<ContainerHardening> {
  return {
    tmpfs: {
      ...DEFAULT_HARDENING.tmpfs,
      [PREDICTION_LOG_DIR]: "rw,noexec,nosuid,nodev,size=64m,mode=1777",
    },
    pidsLimit: 64 + 24 * (workers + 1),
  };
}

export interface BuildImageOptions {
  bundleDir: string;
  /** Repository without tag, e.g. ghcr.io/acme/sentiment. Default `modelship/<model name>`. */
  image?: string;
  /** Extra tags: a bare tag ("latest") goes on `image`, a full reference is used as is. */
  extraTags?: string[];
  baseImage?: string;
  /** Repository of the server image (default modelship-server; tests use their own). */
  serverRepository?: string;
  smoke?: boolean;
  smokeTimeoutMs?: number;
  push?: boolean;
  registry?: { host: string; username: string; password: string };
  /** Git commit the image is built from (default: GITHUB_SHA, else HEAD of the working directory). */
  revision?: string | null;
  sourceUrl?: string | null;
  engine?: Engine;
  reporter?: Reporter;
}

export interface SmokeSummary extends SmokeResult {
  startToReadyMs: number;
  container: string;
}

export interface BuildImageResult {
  image: string;
  tags: string[];
  imageId: string;
  /** Registry digest after a push, else the local image id (both sha256:…). */
  digest: string;
  pushed: boolean;
  sizeBytes: number;
  /** The model image's context (the bundle and its Dockerfile). */
  contextBytes: number;
  /** Staging and building the model image, plus the server image's when this build made it. */
  buildMs: number;
  baseImage: string;
  /** The server image the model image is FROM, and whether this build had to build it. */
  server: ServerImage;
  labels: Record<string, string>;
  model: { name: string; version: string; sha256: string };
  smoke: SmokeSummary | null;
  startToReadyMs: number | null;
}

const run = (bin: string, args: string[]) => runChecked(bin, args, { timeoutMs: 10_000 });

async function gitRevision(): Promise<string | null> {
  if (process.env.GITHUB_SHA && /^[0-9a-f]{40}$/.test(process.env.GITHUB_SHA)) return process.env.GITHUB_SHA;
  try {
    const { stdout } = await run("git", ["rev-parse", "HEAD"]);
    return /^[0-9a-f]{40}$/.test(stdout.trim()) ? stdout.trim() : null;
  } catch {
    return null;
  }
}

async function sourceUrl(): Promise<string | null> {
  if (process.env.GITHUB_REPOSITORY)
    return `${process.env.GITHUB_SERVER_URL ?? "https://github.com"}/${process.env.GITHUB_REPOSITORY}`;
  try {
    const { stdout } = await run("git", ["remote", "get-url", "origin"]);
    const url = stdout.trim();
    // git@github.com:owner/repo.git → https://github.com/owner/repo
    const ssh = /^git@([^:]+):(.+?)(\.git)?$/.exec(url);
    if (ssh) return `https://${ssh[1]}/${ssh[2]}`;
    return url.replace(/\.git$/, "") || null;
  } catch {
    return null;
  }
}

const REF_PART = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** All references to build: `<image>:<model-version>`, `<image>:sha-<7>`, then the extra tags. */
export function imageTags(
  image: string,
  card: ModelCard,
  revision: string | null,
  extra: string[] = [],
): string[] {
  if (!REF_PART.test(image))
    throw new UserError(`--image '${image}' is not a valid image repository (lower case, no tag)`, {
      hint: "e.g. --image ghcr.io/acme/sentiment",
    });
  const tags = [`${image}:${card.version}`];
  if (revision) tags.push(`${image}:sha-${revision.slice(0, 7)}`);
  for (const t of extra) {
    if (t.includes(":") || t.includes("/")) {
      const [repo, tag] = [t.slice(0, t.lastIndexOf(":")), t.slice(t.lastIndexOf(":") + 1)];
      if (!t.includes(":") || !REF_PART.test(repo) || !TAG.test(tag))
        throw new UserError(`--tag '${t}' is not a valid image reference (repository:tag)`);
      tags.push(t);
    } else {
      if (!TAG.test(t))
        throw new UserError(`--tag '${t}' is not a valid tag (letters, digits, '_', '.', '-')`);
      tags.push(`${image}:${t}`);
    }
  }
  return [...new Set(tags)];
}

/** Starts a throwaway container of `image`, waits for ready, runs the golden smoke test, removes it. */
export async function smokeTestImage(
  engine: Engine,
  image: string,
  card: ModelCard,
  options: { timeoutMs?: number; tolerance?: number; run?: Partial<RunOptions> } = {},
): Promise<SmokeSummary> {
  const name = `modelship-smoke-${card.name.replace(/[^a-z0-9_.-]/g, "-")}-${randomBytes(3).toString("hex")}`;
  const started = performance.now();
  await engine.runContainer({
    image,
    name,
    port: SERVER_PORT,
    labels: { "dev.modelship.role": "smoke", [MODEL_LABELS.version]: card.version },
    // One worker starts fastest; no drain grace, the throwaway container has no load balancer.
    env: { MODELSHIP_WORKERS: "1", MODELSHIP_DRAIN_GRACE_MS: "0" },
    memory: "512m",
    hardening: serverHardening(1),
    ...options.run,
  });
  try {
    const port = await engine.hostPort(name, SERVER_PORT);
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitForReady(baseUrl, {
      timeoutMs: options.timeoutMs ?? 60_000,
      intervalMs: 25,
      isAlive: async () => {
        const state = await engine.inspectContainer(name);
        if (state?.running) return null;
        const logs = await engine.logs(name, { tail: 30 }).catch(() => "");
        return `container exited with code ${state?.exitCode ?? "?"}: ${lastErrorLine(logs)}`;
      },
    }).catch(async (err: Error) => {
      throw new UserError(`smoke container for ${image} did not become ready: ${err.message}`, {
        exitCode: ExitCode.failed,
      });
    });
    const startToReadyMs = Math.round(performance.now() - started);
    const result = await runSmokeTest({ baseUrl, card, tolerance: options.tolerance });
    return { ...result, startToReadyMs, container: name };
  } finally {
    await engine.stop(name, { timeoutSec: 5 }).catch(() => {});
    await engine.remove(name, { force: true }).catch(() => {});
  }
}

/** The most telling line of a server's log: the last error-level JSON log message, else the last line. */
export function lastErrorLine(logs: string): string {
  // Native libraries colour their lines with ANSI codes.
  const lines = stripVTControlCharacters(logs)
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  let found: string | undefined;
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      const level = entry.level;
      if (
        (level === "error" || level === "fatal" || (typeof level === "number" && level >= 50)) &&
        typeof entry.msg === "string"
      )
        found = entry.msg;
    } catch {
      // not a JSON log line
    }
  }
  const text = found ?? lines.at(-1) ?? "(no logs)";
  return text.length > 400 ? `${text.slice(0, 399)}…` : text;
}

export async function buildModelImage(options: BuildImageOptions): Promise<BuildImageResult> {
  const reporter = options.reporter ?? new Reporter("silent");
  const { card } = await readBundle(options.bundleDir);
  const engine = options.engine ?? (await Engine.connect());
  const image = options.image ?? `modelship/${card.name}`;
  const revision = options.revision === undefined ? await gitRevision() : options.revision;
  const tags = imageTags(image, card, revision, options.extraTags);
  const baseImage = options.baseImage ?? DEFAULT_BASE_IMAGE;
  const source = options.sourceUrl === undefined ? await sourceUrl() : options.sourceUrl;
  const labels = imageLabels(card, { revision, source, created: new Date() });

  assertBundleDir(options.bundleDir);
  const buildStarted = performance.now();
  // With a smoke test, the real tags are applied only once it passed: a broken image never carries
  // a tag a deploy could pick up.
  const smokeFirst = options.smoke !== false;
  const buildTags = smokeFirst ? [`${image}:unverified-${randomBytes(4).toString("hex")}`] : tags;
  let contextBytes = 0;
  const { built, server } = await withServerImage(
    { engine, baseImage, repository: options.serverRepository, reporter },
    async (server) => {
      const context = await reporter.step(
        "Staging build context",
        () => stageModelContext({ bundleDir: options.bundleDir, labels }),
        (c) => `${(c.bytes / 1e6).toFixed(1)} MB`,
      );
      contextBytes = context.bytes;
      try {
        const built = await reporter.step(
          `Building ${tags[0]}`,
          (update) =>
            engine.build({
              context: context.dir,
              dockerfile: context.dockerfile,
              tags: buildTags,
              // The labels are a literal LABEL line in the staged Dockerfile (see stageModelContext),
              // not --label: Podman turns each --label into a step of its own.
              buildArgs: { SERVER_IMAGE: server.ref },
              // Nothing to reuse (the labels change every build) and faster without the lookup, which
              // on Podman scans every model image of the server image and fails ("layer not known")
              // when one of them is being removed meanwhile.
              noCache: true,
              onProgress: (line) => {
                // Classic builder / Podman: "STEP 3/18: COPY …"; BuildKit plain progress: "#7 [app 2/3] COPY …".
                const step = /(?:STEP|Step) \d+\/\d+.*|\[[\w-]*\s*\d+\/\d+\].*/.exec(line);
                if (step) update(step[0].slice(0, 80));
              },
            }),
          () => `from ${server.ref}${server.built ? "" : " (built before)"}`,
        );
        return { built, server };
      } finally {
        await context.cleanup();
      }
    },
  );
  const buildMs = Math.round(performance.now() - buildStarted);
  const info = await engine.inspectImage(built.imageId);
  if (!info)
    throw new UserError(`the built image ${built.imageId} disappeared`, { exitCode: ExitCode.environment });

  let smoke: SmokeSummary | null = null;
  if (smokeFirst) {
    try {
      smoke = await reporter.step(
        "Smoke-testing the image",
        async () => {
          const result = await smokeTestImage(engine, built.imageId, card, {
            timeoutMs: options.smokeTimeoutMs,
          });
          if (!result.passed) throw new SmokeFailure(result, tags);
          return result;
        },
        (r) => `${r.examples} golden examples, start→ready ${r.startToReadyMs} ms`,
      );
      for (const tag of tags) await engine.tagImage(built.imageId, tag);
    } finally {
      await engine.removeImage(buildTags[0] as string).catch(() => {});
    }
  }

  let digest = built.imageId;
  let pushed = false;
  if (options.push) {
    const registry = options.registry;
    try {
      if (registry) {
        const { host, username, password } = registry;
        await reporter.step(`Logging in to ${host}`, () => engine.login(host, username, password));
      }
      for (const tag of tags) {
        const result = await reporter.step(
          `Pushing ${tag}`,
          () => engine.push(tag),
          (r) => r.digest ?? "",
        );
        if (result.digest) digest = result.digest;
      }
      pushed = true;
    } finally {
      // The token must not stay in the runner user's docker config once the push is over (or failed).
      if (registry) await engine.logout(registry.host).catch(() => {});
    }
  }

  return {
    image: pushed ? `${tags[0]}@${digest}` : (tags[0] as string),
    tags,
    imageId: built.imageId,
    digest,
    pushed,
    sizeBytes: info.sizeBytes,
    contextBytes,
    buildMs,
    baseImage,
    server,
    labels,
    model: { name: card.name, version: card.version, sha256: card.model.sha256 },
    smoke,
    startToReadyMs: smoke?.startToReadyMs ?? null,
  };
}

/** The smoke test found a difference: the build fails (exit 1) with the diff table as its message. */
export class SmokeFailure extends UserError {
  override name = "SmokeFailure";
  readonly result: SmokeSummary;
  constructor(result: SmokeSummary, tags: string[]) {
    super(
      `smoke test failed for ${tags[0]}: the image does not reproduce the bundle's golden predictions\n${formatSmokeReport(result)}`,
      { exitCode: ExitCode.failed },
    );
    this.result = result;
  }
}
