import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import type { ModelCard } from "../contracts/card.js";
import type { Engine } from "../engine/engine.js";
import { ExitCode, UserError } from "../util/errors.js";
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

/**
 * The model-independent half of a model image: node, onnxruntime and the compiled server
 * (serving/Dockerfile), tagged by a key over everything that goes into it and built only when no image
 * has that tag yet. Model images are `FROM` it (serving/model.Dockerfile), so a new model version
 * costs a build of a few MB; pushing a model image pushes these layers along, so the server image
 * needs no push of its own. Server images are never removed by modelship: model images do not need
 * the tag once built, but another build may be about to use it.
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

export interface ServerImage {
  ref: string;
  key: string;
  /** Whether this call built it (false: an image with the key's tag existed). */
  built: boolean;
  /** Time spent staging and building (0 when it existed). */
  stageMs: number;
  buildMs: number;
  contextBytes: number;
}

export interface ServerImageOptions {
  engine: Engine;
  baseImage: string;
  appRoot?: string;
  repository?: string;
  reporter?: Reporter;
  /** Where the locks live (default: $MODELSHIP_LOCK_DIR, else <tmp>/modelship-locks-<uid>). */
  lockDir?: string;
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
    const buildStarted = performance.now();
    try {
      await reporter.step(
        `Building server image ${ref}`,
        async (update) => {
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
          return build(false).catch((err: Error) => {
            if (!/layer not known|image not known|cached image/i.test(err.message)) throw err;
            return build(true);
          });
        },
        () => `from ${options.baseImage} (once per server version)`,
      );
    } finally {
      await context.cleanup();
    }
    const buildMs = Math.round(performance.now() - buildStarted);
    return await use({ ref, key, built: true, stageMs, buildMs, contextBytes: context.bytes });
  } finally {
    await release().catch(() => {});
  }
}

/**
 * Untags the server images of `repository` other than `keep` (refs or keys) whose lock is free right
 * now (a build using one holds its lock). Model images built from them keep working: they hold the layers.
 * Best effort; returns the refs removed.
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
): Promise<string[]> {
  const repository = options.repository ?? SERVER_REPOSITORY;
  const lockDir = options.lockDir ?? serverLockDir();
  const removed: string[] = [];
  for (const ref of await engine.listImageTags(repository).catch(() => [])) {
    const key = ref.slice(repository.length + 1);
    if (options.keep.includes(ref) || options.keep.includes(key) || !/^[0-9a-f]{16}$/.test(key)) continue;
    const release = await lockServerKey(lockDir, key, false).catch(() => null);
    if (!release) continue;
    try {
      const info = await engine.inspectImage(ref);
      const created = info?.created ? Date.parse(info.created) : Number.NaN;
      if (!info || !(Date.now() - created >= (options.olderThanMs ?? 0))) continue;
      await engine.removeImage(ref);
      removed.push(ref);
    } catch {
      // in use by a container, or removed meanwhile: leave it
    } finally {
      await release().catch(() => {});
    }
  }
  return removed;
}
