import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Makes a bundled action self-sufficient when it is used from another repository
 * (`uses: OWNER/modelship/actions/<name>@<ref>`): the runner checks the whole modelship repository out
 * under `_actions/OWNER/modelship/<ref>/`, but without node_modules or a compiled server, and the
 * caller's workspace may hold no Node project at all.
 *
 * On first use per runner and modelship version, the action's own checkout is installed into a cache
 * folder (`npm ci --ignore-scripts` from its package-lock.json, then `tsc`), atomically (built under a
 * temp name, then renamed). Later runs find the finished folder by a content key and only hash the
 * sources. The result is exported as MODELSHIP_APP_ROOT, which the onnxruntime-node loader of the
 * bundles and the image build context (src/image/context.ts findAppRoot) read first.
 *
 * Inside a modelship checkout that already ran `npm ci` (this repository's own workflows, the tests),
 * that checkout is used as is: nothing is installed.
 */

/** What the install copies from the action's checkout: enough to `npm ci` and compile the server. */
const SOURCES = [
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "bin",
  "src",
  "serving",
  "training",
  "monitoring",
];
const READY = ".modelship-ready";

function isModelshipRoot(dir: string): boolean {
  try {
    return (
      (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string }).name === "modelship"
    );
  } catch {
    return false;
  }
}

function isInstalled(dir: string): boolean {
  return (
    existsSync(join(dir, "node_modules", "onnxruntime-node", "package.json")) &&
    existsSync(join(dir, "dist", "serving", "main.js"))
  );
}

/** The modelship checkout holding this bundle (`<root>/actions/<name>/dist/index.js`), if any. */
export function actionCheckout(bundleFile: string): string | null {
  const root = resolve(dirname(bundleFile), "..", "..", "..");
  return isModelshipRoot(root) ? root : null;
}

function hashTree(hash: ReturnType<typeof createHash>, root: string, rel: string): void {
  const full = join(root, rel);
  if (!existsSync(full)) return;
  if (statSync(full).isDirectory()) {
    for (const entry of readdirSync(full).sort()) hashTree(hash, root, join(rel, entry));
    return;
  }
  hash.update(rel).update("\0").update(readFileSync(full)).update("\0");
}

/** Content key of what an install builds from: changes whenever the pinned ref's sources do. */
export function runtimeKey(checkout: string): string {
  const hash = createHash("sha256");
  hash.update(process.version.split(".")[0] ?? "");
  for (const rel of SOURCES) hashTree(hash, checkout, rel);
  const version = (JSON.parse(readFileSync(join(checkout, "package.json"), "utf8")) as { version?: string })
    .version;
  return `${version ?? "0.0.0"}-${hash.digest("hex").slice(0, 16)}`;
}

export function runtimeCacheRoot(): string {
  if (process.env.MODELSHIP_ACTION_CACHE) return resolve(process.env.MODELSHIP_ACTION_CACHE);
  const base = process.env.RUNNER_TOOL_CACHE || process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "modelship");
}

function install(checkout: string, target: string): void {
  const staging = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    for (const rel of SOURCES)
      if (existsSync(join(checkout, rel)))
        cpSync(join(checkout, rel), join(staging, rel), { recursive: true });
    const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip", npm_config_update_notifier: "false" };
    const opts = { cwd: staging, env, stdio: ["ignore", 2, 2] as ["ignore", number, number] };
    // onnxruntime-node ships its CPU binaries in the package: no install script is needed.
    execFileSync("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], opts);
    execFileSync(
      process.execPath,
      [join("node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
      opts,
    );
    writeFileSync(join(staging, READY), `${new Date().toISOString()}\n`);
    try {
      renameSync(staging, target);
    } catch (err) {
      // another job finished the same install first: use theirs
      if (!existsSync(join(target, READY))) throw err;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Points MODELSHIP_APP_ROOT at an installed modelship for this action; returns it (null when the
 * action does not run from a modelship checkout, e.g. a bundle copied elsewhere by a test).
 */
export function ensureActionRuntime(bundleFile: string): string | null {
  if (process.env.MODELSHIP_APP_ROOT) return process.env.MODELSHIP_APP_ROOT;
  const checkout = actionCheckout(bundleFile);
  if (!checkout) return null;
  if (isInstalled(checkout)) {
    process.env.MODELSHIP_APP_ROOT = checkout;
    return checkout;
  }
  const started = Date.now();
  const target = join(runtimeCacheRoot(), runtimeKey(checkout));
  if (!existsSync(join(target, READY))) {
    process.stderr.write(
      `modelship: installing the action's runtime into ${target} (once per runner and version)\n`,
    );
    install(checkout, target);
    process.stderr.write(`modelship: runtime installed in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
  process.env.MODELSHIP_APP_ROOT = target;
  return target;
}

/** Side effect for the bundles' entry (scripts/build-actions.mjs): set up before any import needs it. */
export function bootstrapFromBundle(importMetaUrl: string): void {
  try {
    ensureActionRuntime(fileURLToPath(importMetaUrl));
  } catch (err) {
    const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
    process.stdout.write(`::error::modelship could not install its runtime: ${message}\n`);
    process.exit(1);
  }
}
