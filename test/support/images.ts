import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import lockfile from "proper-lockfile";
import { readBundle } from "../../src/bundle/read.js";
import { Engine } from "../../src/engine/engine.js";
import { type BuildImageResult, buildModelImage } from "../../src/image/build.js";
import { modelImageKey, resolveServerKey } from "../../src/image/server.js";
import { repoRoot } from "./data.js";

/**
 * Container images for tests, built once per run and reused across runs while their inputs are
 * unchanged: tags are derived from content, and a file lock keeps parallel test processes from
 * building the same image twice.
 */

const run = promisify(execFile);
const cacheDir = join(repoRoot, "test", ".cache", "images");
const DEFAULT_SOCKET = "/run/modelship/podman.sock";

/** Tests talk to the CI host's Podman service unless DOCKER_HOST says otherwise. */
export function ensureDockerHost(): void {
  if (!process.env.DOCKER_HOST && existsSync(DEFAULT_SOCKET))
    process.env.DOCKER_HOST = `unix://${DEFAULT_SOCKET}`;
}

export async function testEngine(): Promise<Engine> {
  ensureDockerHost();
  return Engine.connect();
}

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(cacheDir, { recursive: true });
  const target = join(cacheDir, `${name}.lock-target`);
  if (!existsSync(target)) await writeFile(target, "");
  const release = await lockfile.lock(target, {
    retries: { retries: 600, minTimeout: 200, maxTimeout: 1000 },
    stale: 120_000,
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}

let baseRef: Promise<string> | undefined;

/** The local stand-in for node:20-bookworm-slim (scripts/base-image.sh); its tag is content-derived. */
export function baseImage(): Promise<string> {
  ensureDockerHost();
  baseRef ??= withLock("base", async () => {
    const { stdout } = await run("bash", [join(repoRoot, "scripts", "base-image.sh"), "mstest-base"], {
      env: process.env,
    });
    const ref = stdout.trim().split("\n").pop();
    if (!ref) throw new Error("scripts/base-image.sh printed no image reference");
    return ref;
  });
  return baseRef;
}

/**
 * The local base image resolved again now (scripts/base-image.sh recreates it if it was untagged): for
 * a `modelship build` / `deploy --model` with `--base-image`. The same reference modelImage() builds
 * on, so the server image (its key holds the base's name and id) is built once and shared.
 */
export function freshBaseImage(): Promise<string> {
  baseRef = undefined;
  return baseImage();
}

export interface ModelImage {
  /** Content-derived reference, e.g. localhost/mstest-model:3f2a…; stable while its inputs are. */
  ref: string;
  baseImage: string;
  /** Set when this process built it (null when reused from an earlier build). */
  build: BuildImageResult | null;
}

const modelImages = new Map<string, Promise<ModelImage>>();
/** References handed out by this process: never dropped as stale while it runs. */
const handedOut = new Set<string>();

/** The real model server image for a bundle, on the local base, without the build's own smoke run. */
export function modelImage(bundleDir: string, opts: { repository?: string } = {}): Promise<ModelImage> {
  const repository = opts.repository ?? "mstest-model";
  const memo = `${repository}|${bundleDir}`;
  let pending = modelImages.get(memo);
  if (!pending) {
    pending = buildOnce().catch((err: unknown) => {
      // Another test process on this shared host may have untagged the base image between its
      // resolution and this build (scripts/base-image.sh drops older keys): resolve it again, once.
      if (
        !/initializing source docker:\/\/mstest-base|mstest-base.*(not known|no such image)/i.test(
          String(err),
        )
      )
        throw err;
      baseRef = undefined;
      return buildOnce();
    });
    modelImages.set(memo, pending);
  }
  return pending;

  async function buildOnce(): Promise<ModelImage> {
    const engine = await testEngine();
    const base = await baseImage();
    // The product's keys: the server image's (base, server Dockerfile, traced files, packages)
    // and the model image's on top (model Dockerfile, card).
    const server = await resolveServerKey({ engine, baseImage: base, appRoot: repoRoot });
    const { card } = await readBundle(bundleDir);
    const key = await modelImageKey(server.key, card, repoRoot);
    const ref = `${repository}:${key}`;
    handedOut.add(ref);
    return withLock(`model-${key}`, async () => {
      if (await engine.inspectImage(ref)) return { ref, baseImage: base, build: null };
      const build = await buildModelImage({
        bundleDir,
        image: repository,
        extraTags: [key],
        baseImage: base,
        smoke: false,
        revision: null,
        engine,
      });
      // Older content keys of this repository are stale: drop them so runs do not pile up images —
      // once an hour old: several suites share a repository, and another checkout on this host (other
      // sources, other keys) may be running one of them with its key right now.
      // Best effort: Podman's image list fails while another process removes an image ("image not known").
      const { stdout } = await run("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}"]).catch(
        () => ({
          stdout: "",
        }),
      );
      for (const old of stdout.split("\n"))
        if (
          old.replace(/^localhost\//, "").startsWith(`${repository}:`) &&
          !handedOut.has(old.replace(/^localhost\//, "")) &&
          (await olderThanAnHour(engine, old))
        )
          await engine.removeImage(old).catch(() => {});
      // Server images of older checkouts: the build removes those no image is built from any more
      // when it builds a new one (withServerImage), so nothing to do here.
      return { ref, baseImage: base, build };
    });
  }
}

async function olderThanAnHour(engine: Engine, ref: string): Promise<boolean> {
  const info = await engine.inspectImage(ref).catch(() => null);
  const created = info?.created ? Date.parse(info.created) : Number.NaN;
  return Date.now() - created >= 3_600_000;
}
