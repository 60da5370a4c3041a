import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import type { ModelCard } from "../contracts/card.js";
import type { Engine } from "../engine/engine.js";
import { ExitCode, firstLine, UserError } from "../util/errors.js";
import { Reporter } from "../util/progress.js";
import {
  findAppRoot,
  MODEL_DOCKERFILE,
  packageClosure,
  ROOTFS_SCRIPT,
  SERVER_DOCKERFILE,
  stageServerContext,
  traceServer,
} from "./context.js";
import { planServerPrune } from "./server-prune.js";

/**
 * The model-independent half of a model image: node, onnxruntime and the compiled server
 * (serving/Dockerfile), tagged by a key over everything that goes into it and built only when no image
 * has that tag yet. Model images are `FROM` it (serving/model.Dockerfile), so a new model version
 * costs a build of a few MB; pushing a model image pushes these layers along, so the server image
 * needs no push of its own. Building a new one removes the older ones that no remaining image is
 * built from and no build holds the lock of (server-prune.ts plans it, `pruneServerImages` runs it).
 */

/** Local repository of server images (no registry: they are never pushed). */
export const SERVER_REPOSITORY = "modelship-server";
/** Bumped when what the key covers changes meaning. */
const KEY_FORMAT = "modelship-server-key/1";

export interface ServerKey {
  key: string;
  /** The base image's id when it is local (part of the key), else null (`docker build` pulls it). */
  baseImageId: string | null;
  trace: { files: string[]; packages: string[] };
}

/**
 * The server image's content key: the base image (reference and id), the server Dockerfile,
 * rootfs.cjs, every traced server file and the package.json (so the version) of every package in
 * the closure. 16 hex digits.
 */
export async function serverImageKey(options: {
  baseImage: string;
  baseImageId: string | null;
  appRoot?: string;
}): Promise<ServerKey> {
  const appRoot = options.appRoot ?? findAppRoot();
  const hash = createHash("sha256");
  hash.update(`${KEY_FORMAT}\n${options.baseImage}\n${options.baseImageId ?? "-"}\n`);
  for (const file of [SERVER_DOCKERFILE, ROOTFS_SCRIPT])
    hash.update(file).update(await readFile(join(appRoot, file)));
  const trace = await traceServer(appRoot);
  for (const file of trace.files) hash.update(file).update(await readFile(join(appRoot, file)));
  for (const pkg of packageClosure(appRoot, trace.packages))
    hash.update(pkg).update(await readFile(join(appRoot, pkg, "package.json")));
  return { key: hash.digest("hex").slice(0, 16), baseImageId: options.baseImageId, trace };
}

/**
 * A model image's content key (for caches of built images, like the tests' and the demo's): its
 * server key, the model Dockerfile and the bundle's card (which holds the model's sha256).
 */
export async function modelImageKey(serverKey: string, card: ModelCard, appRoot?: string): Promise<string> {
  const hash = createHash("sha256");
  hash.update(`${serverKey}\n`);
  hash.update(await readFile(join(appRoot ?? findAppRoot(), MODEL_DOCKERFILE)));
  hash.update(JSON.stringify(card));
  return hash.digest("hex").slice(0, 16);
}

export interface PruneResult {
  /** Tags removed. */
  removed: string[];
  /** Older server tags left in place, with why (an image is built from it, a build holds its lock, the engine refused). */
  kept: { ref: string; reason: string }[];
  /** Set when listing the images failed: nothing was removed. */
  failed?: string;
}

export interface ServerImage {
  ref: string;
  key: string;
  /** Whether this call built it (false: an image with the key's tag existed). */
  built: boolean;
  /** Time spent staging and building (0 when it existed). */
  stageMs: number;
  buildMs: number;
  contextBytes: number;
  /** Older server images removed and kept after this call built a new one. */
  pruned?: PruneResult;
}

export interface ServerImageOptions {
  engine: Engine;
  baseImage: string;
  appRoot?: string;
  repository?: string;
  reporter?: Reporter;
  /** Where the locks live (default: $MODELSHIP_LOCK_DIR, else <tmp>/modelship-locks-<uid>). */
  lockDir?: string;
  /** After building a new server image, remove the older ones no image is built from (default true). */
  prune?: boolean;
}

export function serverLockDir(): string {
  return process.env.MODELSHIP_LOCK_DIR ?? join(tmpdir(), `modelship-locks-${process.getuid?.() ?? "user"}`);
}

/** The file lock of one server key (`wait: false`: fails at once when held). */
export async function lockServerKey(
  lockDir: string,
  key: string,
  wait: boolean,
): Promise<() => Promise<void>> {
  await mkdir(lockDir, { recursive: true });
  return lockfile.lock(join(lockDir, `server-${key}`), {
    realpath: false,
    stale: 60_000,
    update: 10_000,
    retries: wait ? { retries: 900, minTimeout: 200, maxTimeout: 1000 } : 0,
    // A lost lock (event loop stalled past `stale`) costs at most a second, identical build.
    onCompromised: () => {},
  });
}

/** The server image's content key for a base image (its id read from the engine; pulled when missing). */
export async function resolveServerKey(
  options: Pick<ServerImageOptions, "engine" | "baseImage" | "appRoot" | "reporter" | "repository">,
): Promise<ServerKey & { ref: string }> {
  const { engine } = options;
  const reporter = options.reporter ?? new Reporter("silent");
  const appRoot = options.appRoot ?? findAppRoot();
  let base = await engine.inspectImage(options.baseImage);
  if (!base) {
    // Pulled now (not by `docker build`), so its id is in the key from the first build on.
    await reporter.step(`Pulling ${options.baseImage}`, () => engine.pull(options.baseImage));
    base = await engine.inspectImage(options.baseImage);
  }
  const k = await serverImageKey({ baseImage: options.baseImage, baseImageId: base?.id ?? null, appRoot });
  return { ...k, ref: `${options.repository ?? SERVER_REPOSITORY}:${k.key}` };
}

/**
 * Runs `use` with the server image for this checkout and base: reused when its tag exists, else built
 * first. All under a file lock per key, held until `use` returns: concurrent builds of one key build
 * it once (the others wait, then reuse it), and `pruneServerImages` never untags an image a build is
 * about to start `FROM`. Once built, a model image holds the server layers itself and needs no tag.
 */
export async function withServerImage<T>(
  options: ServerImageOptions,
  use: (server: ServerImage) => Promise<T>,
): Promise<T> {
  const { engine } = options;
  const reporter = options.reporter ?? new Reporter("silent");
  const appRoot = options.appRoot ?? findAppRoot();
  const lockDir = options.lockDir ?? serverLockDir();
  const { key, ref, trace } = await reporter.step(
    "Looking up the server image",
    () => resolveServerKey({ ...options, appRoot, reporter: new Reporter("silent") }),
    (k) => k.ref,
  );
  const release = await lockServerKey(lockDir, key, true).catch((err: Error) => {
    throw new UserError(`cannot lock the server image ${ref}: ${err.message}`, {
      exitCode: ExitCode.environment,
      hint: `another modelship build holds ${join(lockDir, `server-${key}.lock`)}; retry when it is done`,
    });
  });
  try {
    if (await engine.inspectImage(ref))
      return await use({ ref, key, built: false, stageMs: 0, buildMs: 0, contextBytes: 0 });
    const stageStarted = performance.now();
    const context = await reporter.step(
      "Staging server image context",
      () => stageServerContext({ appRoot, trace }),
      (c) => `${(c.bytes / 1e6).toFixed(1)} MB, ${c.packages.length} packages`,
    );
    const stageMs = Math.round(performance.now() - stageStarted);
    let buildMs = 0;
    let pruned: PruneResult | null = null;
    try {
      await reporter.step(
        `Building server image ${ref}`,
        async (update) => {
          const buildStarted = performance.now();
          const build = (noCache: boolean) =>
            engine.build({
              context: context.dir,
              dockerfile: context.dockerfile,
              tags: [ref],
              buildArgs: { BASE_IMAGE: options.baseImage },
              noCache,
              onProgress: (line) => {
                const step = /(?:STEP|Step) \d+\/\d+.*|\[[\w-]*\s*\d+\/\d+\].*/.exec(line);
                if (step) update(step[0].slice(0, 80));
              },
            });
          // Podman's cache lookup fails when a cached step's image is removed meanwhile: once more
          // without it.
          await build(false).catch((err: Error) => {
            if (!/layer not known|image not known|cached image/i.test(err.message)) throw err;
            return build(true);
          });
          buildMs = Math.round(performance.now() - buildStarted);
          // The new server image supersedes the older ones: those no remaining image is built from go.
          if (options.prune === false) return;
          update("removing older server images no image is built from");
          pruned = await pruneServerImages(engine, {
            keep: [ref],
            repository: options.repository,
            lockDir,
          }).catch((err: Error) => ({
            removed: [],
            kept: [],
            failed: firstLine(err).slice(0, 200),
          }));
        },
        () =>
          [`from ${options.baseImage} (once per server version)`, pruned && pruneSummary(pruned)]
            .filter(Boolean)
            .join("; "),
      );
    } finally {
      await context.cleanup();
    }
    return await use({
      ref,
      key,
      built: true,
      stageMs,
      buildMs,
      contextBytes: context.bytes,
      ...(pruned ? { pruned } : {}),
    });
  } finally {
    await release().catch(() => {});
  }
}

/**
 * Removes the server images of `repository` other than `keep` (refs or keys) that no remaining image
 * is built from (server-prune.ts decides), skipping any whose lock a build holds right now. Never
 * forced: an engine refusal (a container uses it, dependent child images) means still in use, kept.
 */
export async function pruneServerImages(
  engine: Engine,
  options: {
    keep: string[];
    repository?: string;
    lockDir?: string;
    /** Only images created at least this long ago (default 0). */
    olderThanMs?: number;
  },
): Promise<PruneResult> {
  const repository = options.repository ?? SERVER_REPOSITORY;
  const lockDir = options.lockDir ?? serverLockDir();
  const result: PruneResult = { removed: [], kept: [] };
  const plan = planServerPrune(await engine.listImageLayers(), { repository, keep: options.keep });
  result.kept.push(...plan.keep);
  for (const { ref } of plan.remove) {
    const key = ref.slice(repository.length + 1);
    const release = await lockServerKey(lockDir, key, false).catch(() => null);
    if (!release) {
      result.kept.push({ ref, reason: "a build is using it" });
      continue;
    }
    try {
      if (options.olderThanMs) {
        const info = await engine.inspectImage(ref);
        const created = info?.created ? Date.parse(info.created) : Number.NaN;
        if (!info) continue;
        if (!(Date.now() - created >= options.olderThanMs)) {
          result.kept.push({ ref, reason: "recent" });
          continue;
        }
      }
      await engine.removeImage(ref);
      result.removed.push(ref);
    } catch (err) {
      const reason = (err as Error).message.split("\n")[0] ?? "refused";
      result.kept.push({ ref, reason: `the engine refused: ${reason}` });
    } finally {
      await release().catch(() => {});
    }
  }
  result.removed.sort();
  result.kept.sort((a, b) => a.ref.localeCompare(b.ref));
  return result;
}

/** The end of the server build's progress line: what pruning removed and kept. */
export function pruneSummary(p: PruneResult): string {
  if (p.failed) return `older server images left alone: ${p.failed}`;
  const parts: string[] = [];
  if (p.removed.length) parts.push(`removed older ${p.removed.join(", ")}`);
  if (p.kept.length) parts.push(`kept ${p.kept.length} older (still in use)`);
  return parts.join("; ");
}
