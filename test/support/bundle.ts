import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import lockfile from "proper-lockfile";
import { readBundle } from "../../src/bundle/read.js";
import { sha256File } from "../../src/util/fs.js";
import { dataPath, repoRoot } from "./data.js";

const exec = promisify(execFile);

export interface TrainedBundleOptions {
  /** "binary" (negative/positive, neutral dropped; default) or "three-class". */
  classes?: "binary" | "three-class";
  /**
   * A deliberately wrong binary model: positive and negative swapped before training. It loads,
   * answers 200 OK and passes its own golden examples, but its predictions are flipped — what the
   * canary analysis has to catch.
   */
  swapped?: boolean;
  /** Trainer params (train.params in a modelship.yaml), e.g. { seed: 7 } or { C: 0.02 }. */
  params?: Record<string, number>;
}

/** Everything that changes what `modelship train` writes; any change retrains. */
const SOURCES = [
  "training",
  "src/bundle",
  "src/contracts",
  "src/pipeline",
  "src/data",
  "src/onnx",
  "src/metrics",
  "src/config",
  "src/util",
  "src/cli/commands/train.ts",
];

const cacheRoot = join(repoRoot, "test", ".cache", "bundles");

/**
 * Path of a real bundle trained by the real CLI (`node bin/modelship.js train`) from the real
 * dataset, built once and cached under test/.cache/bundles/<key>, where key hashes the training
 * sources, the dataset's sha256 and the options. A file lock keeps parallel test processes from
 * training the same bundle twice. Needs dist/ (test/global-setup.ts builds it).
 */
export async function trainedBundle(opts: TrainedBundleOptions = {}): Promise<string> {
  const classes = opts.classes ?? "binary";
  const swapped = opts.swapped ?? false;
  if (swapped && classes !== "binary")
    throw new Error("trainedBundle: swapped applies to the binary model only");
  const data = dataPath();
  const params = opts.params;
  const key = await cacheKey(
    data,
    params ? { classes, swapped, params, seedFlag: true } : { classes, swapped },
  );
  const dir = join(cacheRoot, key);
  const found = await existingBundle(dir);
  if (found) return found;

  await mkdir(cacheRoot, { recursive: true });
  const lockTarget = join(cacheRoot, `${key}.lock-target`);
  await writeFile(lockTarget, "", { flag: "a" });
  const release = await lockfile.lock(lockTarget, {
    stale: 60_000,
    update: 10_000,
    retries: { retries: 600, minTimeout: 500, maxTimeout: 1000 },
  });
  try {
    const again = await existingBundle(dir);
    if (again) return again;
    const name = swapped ? "airline-swapped" : classes === "binary" ? "airline" : "airline3";
    const args = ["bin/modelship.js", "train", "--data", data, "--out", dir, "--name", name, "--json"];
    if (classes === "binary") args.push("--labels", "negative,positive");
    if (swapped) args.push("--label-map", "positive=negative,negative=positive");
    if (params) {
      // The seed through the CLI flag, everything else through a modelship.yaml (train.params).
      const { seed, ...rest } = params;
      if (seed !== undefined) args.push("--seed", String(seed));
      if (Object.keys(rest).length > 0) {
        const config = join(cacheRoot, `${key}.yaml`);
        await writeFile(
          config,
          `train:\n  params:\n${Object.entries(rest)
            .map(([k, v]) => `    ${k}: ${v}\n`)
            .join("")}`,
        );
        args.push("--config", config);
      }
    }
    // One retry: in a shared working tree another test run's global setup may be rewriting dist/
    // while the CLI starts. A real failure fails twice and is reported.
    let stdout = "";
    for (let attempt = 1; ; attempt++) {
      try {
        ({ stdout } = await exec("node", args, { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 }));
        break;
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        if (attempt >= 2)
          throw new Error(`trainedBundle: modelship train failed: ${e.stderr?.trim() || e.message}`);
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
    const { bundle } = JSON.parse(stdout) as { bundle: string };
    await readBundle(bundle);
    return bundle;
  } finally {
    await release();
  }
}

async function existingBundle(dir: string): Promise<string | undefined> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const entry of entries.sort().reverse()) {
    if (entry.startsWith(".")) continue;
    const candidate = join(dir, entry);
    try {
      await readBundle(candidate);
      return candidate;
    } catch {
      // not a complete bundle (should not happen: bundles are renamed into place when complete)
    }
  }
  return undefined;
}

async function cacheKey(data: string, options: object): Promise<string> {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(options));
  hash.update(await sha256File(data));
  for (const source of SOURCES) {
    for (const file of await listFiles(join(repoRoot, source))) {
      hash.update(relative(repoRoot, file));
      hash.update(await readFile(file));
    }
  }
  return hash.digest("hex").slice(0, 16);
}

async function listFiles(path: string): Promise<string[]> {
  const s = await stat(path).catch(() => undefined);
  if (!s) return [];
  if (s.isFile()) return path.endsWith(".ts") ? [path] : [];
  const out: string[] = [];
  for (const entry of (await readdir(path)).sort()) out.push(...(await listFiles(join(path, entry))));
  return out;
}

/**
 * A copy of a trained bundle under another version (same weights, a new release of it), in
 * test/.cache/<suite>/. The image built from it has the same content key in every suite that uses
 * the same stamp, so suites share one build.
 */
export async function bundleAs(src: string, stamp: string, suite: string): Promise<string> {
  const card = JSON.parse(await readFile(join(src, "model.json"), "utf8"));
  const version = `${stamp}-${card.model.sha256.slice(0, 8)}`;
  const dir = join(repoRoot, "test", ".cache", suite, `${card.name}-${version}`);
  await rm(dir, { recursive: true, force: true });
  await cp(src, dir, { recursive: true });
  await writeFile(join(dir, "model.json"), `${JSON.stringify({ ...card, version }, null, 2)}\n`);
  return dir;
}
