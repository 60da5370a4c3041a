import { existsSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { CARD_FILE, MODEL_FILE } from "../contracts/card.js";
import { ExitCode, UserError } from "../util/errors.js";

/**
 * Stages the image build contexts so `docker build` needs no network and no compiler. The server
 * image's: the compiled server plus only the library files and npm packages it actually imports
 * (traced from the JS), with onnxruntime-node's binaries for other platforms left out. A model
 * image's: the model bundle alone. The same contexts build on Docker Engine and Podman.
 */

/** Where the server's compiled entry points live, relative to the app root. */
export const SERVER_DIST_DIR = "dist/serving";
/** The server image's Dockerfile and the script its build stage runs, relative to the app root. */
export const SERVER_DOCKERFILE = "serving/Dockerfile";
export const ROOTFS_SCRIPT = "src/image/rootfs.cjs";
/** The model image's Dockerfile (FROM the server image), relative to the app root. */
export const MODEL_DOCKERFILE = "serving/model.Dockerfile";
/** onnxruntime-node's prebuilt binaries, relative to its package folder. */
const ORT_BIN_DIR = join("bin", "napi-v6");
const KEEP_OS = "linux";
const KEEP_ARCH = "x64";
/** Needed only by onnxruntime-node's install script (binary download), never at run time. */
const INSTALL_ONLY_PACKAGES = new Set(["adm-zip", "global-agent"]);

export interface StagedContext {
  dir: string;
  dockerfile: string;
  /** Relative paths of the dist files copied. */
  distFiles: string[];
  /** Package directories copied, relative to node_modules' parent. */
  packages: string[];
  bytes: number;
  cleanup: () => Promise<void>;
}

function modelshipRootAbove(from: string): string | null {
  let dir = resolve(from);
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "modelship") return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function thisFileDir(): string | null {
  try {
    return dirname(fileURLToPath(import.meta.url));
  } catch {
    return null; // bundled as CommonJS: no import.meta
  }
}

/**
 * The modelship checkout whose compiled server goes into the image: MODELSHIP_APP_ROOT, else the one
 * this code runs from, else the one around the working directory (an action checked out under the
 * runner's _actions/ has no build of its own; the workspace has).
 */
export function findAppRoot(): string {
  const candidates = [
    process.env.MODELSHIP_APP_ROOT,
    thisFileDir(),
    process.env.GITHUB_WORKSPACE,
    process.cwd(),
  ]
    .filter((c): c is string => Boolean(c))
    .map((c) => modelshipRootAbove(c))
    .filter((c): c is string => c !== null);
  const built = candidates.find((root) => existsSync(join(root, SERVER_DIST_DIR, "main.js")));
  if (built) return built;
  throw new UserError(
    candidates.length > 0
      ? `the compiled model server is missing in ${candidates[0]} (${SERVER_DIST_DIR}/main.js)`
      : "cannot find the modelship checkout (no package.json named modelship above this file or the working directory)",
    {
      exitCode: ExitCode.environment,
      hint: "run `npm ci` (it builds dist/) in the modelship checkout, or set MODELSHIP_APP_ROOT to it",
    },
  );
}

const BUILTINS = new Set(builtinModules);
// Static imports/exports, dynamic import(), require(), and worker files referenced as new URL(…, import.meta.url).
const SPECIFIER_PATTERNS = [
  /\b(?:import|export)\s[^'"`;]*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  /\brequire\(\s*["']([^"']+)["']\s*\)/g,
  /\bnew\s+URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g,
];

export function extractSpecifiers(source: string): string[] {
  const found = new Set<string>();
  for (const pattern of SPECIFIER_PATTERNS)
    for (const m of source.matchAll(pattern)) if (m[1]) found.add(m[1]);
  return [...found];
}

function packageName(specifier: string): string | null {
  if (specifier.startsWith("node:") || BUILTINS.has(specifier) || BUILTINS.has(specifier.split("/")[0] ?? ""))
    return null;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? null);
}

async function listJs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listJs(full)));
    else if (/\.(m?js|cjs|json)$/.test(entry.name)) out.push(full);
  }
  return out;
}

/** Every dist file reachable from the server's entry points, and the npm packages they import. */
export async function traceServer(appRoot: string): Promise<{ files: string[]; packages: string[] }> {
  const serverDir = join(appRoot, SERVER_DIST_DIR);
  if (!existsSync(join(serverDir, "main.js")))
    throw new UserError(
      `the compiled server is missing (${relative(process.cwd(), join(serverDir, "main.js"))})`,
      {
        exitCode: ExitCode.environment,
        hint: "run `npm run build` in the modelship checkout first (npm ci does it)",
      },
    );
  const distRoot = join(appRoot, "dist");
  const queue = await listJs(serverDir);
  const files = new Set<string>();
  const packages = new Set<string>();
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    if (file.endsWith(".json")) continue;
    for (const spec of extractSpecifiers(await readFile(file, "utf8"))) {
      if (spec.startsWith(".")) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(distRoot + sep))
          throw new UserError(`${relative(appRoot, file)} imports ${spec}, outside dist/`);
        if (existsSync(target)) queue.push(target);
        else
          throw new UserError(
            `${relative(appRoot, file)} imports ${spec}, which is not compiled (run npm run build)`,
          );
      } else {
        const name = packageName(spec);
        if (name) packages.add(name);
      }
    }
  }
  return { files: [...files].map((f) => relative(appRoot, f)).sort(), packages: [...packages].sort() };
}

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * Node's lookup: <dir>/node_modules/<name>, walking up past the app root — an installed modelship
 * (node_modules/modelship) finds its dependencies hoisted next to it.
 */
function resolvePackageDir(fromDir: string, name: string): string | null {
  let dir = fromDir;
  for (;;) {
    if (basename(dir) !== "node_modules") {
      const candidate = join(dir, "node_modules", name);
      if (existsSync(join(candidate, "package.json"))) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * Where a package found by `packageClosure` (relative to the app root, `../x` when hoisted above it)
 * goes in the image's app folder: its path below the node_modules root that holds it.
 */
export function imagePackagePath(appRoot: string, pkg: string): string {
  const abs = resolve(appRoot, pkg);
  if (abs.startsWith(resolve(appRoot) + sep)) return relative(appRoot, abs);
  let dir = resolve(appRoot);
  for (;;) {
    const parent = dirname(dir);
    if (parent === dir) return relative(appRoot, abs);
    dir = parent;
    if (abs.startsWith(join(dir, "node_modules") + sep)) return relative(dir, abs);
  }
}

/** The installed package directories needed by `roots`, with their runtime dependency closure. */
export function packageClosure(appRoot: string, roots: string[]): string[] {
  const dirs = new Set<string>();
  const queue: Array<{ from: string; name: string; optional: boolean }> = roots.map((name) => ({
    from: appRoot,
    name,
    optional: false,
  }));
  while (queue.length > 0) {
    const { from, name, optional } = queue.shift() as { from: string; name: string; optional: boolean };
    if (INSTALL_ONLY_PACKAGES.has(name)) continue;
    const dir = resolvePackageDir(from, name);
    if (!dir) {
      if (optional) continue;
      throw new UserError(`package '${name}' is imported by the server but not installed`, {
        exitCode: ExitCode.environment,
        hint: "run `npm ci` in the modelship checkout",
      });
    }
    if (dirs.has(dir)) continue;
    dirs.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as PackageJson;
    for (const dep of Object.keys(pkg.dependencies ?? {}))
      queue.push({ from: dir, name: dep, optional: false });
    for (const dep of Object.keys({ ...pkg.optionalDependencies, ...pkg.peerDependencies }))
      queue.push({ from: dir, name: dep, optional: true });
  }
  // the app root's own node_modules first: they shadow hoisted copies of the same package
  const rel = [...dirs].map((d) => relative(appRoot, d));
  return [...rel.filter((d) => !d.startsWith("..")).sort(), ...rel.filter((d) => d.startsWith("..")).sort()];
}

async function dirBytes(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path)) total += await dirBytes(join(path, entry));
  return total;
}

export interface StageServerOptions {
  appRoot?: string;
  /** The server's trace, when the caller has it already (the content key needs it too). */
  trace?: { files: string[]; packages: string[] };
  /** Parent for the temp context dir (default: the OS temp dir). */
  tmpRoot?: string;
}

/**
 * The server image's context (serving/Dockerfile): app/ (compiled server, traced library files and
 * the npm package closure, other platforms' onnxruntime binaries left out) and rootfs.cjs. No model.
 */
export async function stageServerContext(options: StageServerOptions = {}): Promise<StagedContext> {
  const appRoot = options.appRoot ?? findAppRoot();
  const trace = options.trace ?? (await traceServer(appRoot));
  const packages = packageClosure(appRoot, trace.packages);

  const dir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), "modelship-server-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const app = join(dir, "app");
    await mkdir(app, { recursive: true });
    const own = JSON.parse(await readFile(join(appRoot, "package.json"), "utf8")) as PackageJson;
    // "type": "module" makes node treat the compiled dist/*.js as ESM, as in the checkout.
    await writeFile(
      join(app, "package.json"),
      `${JSON.stringify({ name: "modelship-server", version: own.version ?? "0.0.0", private: true, type: "module" }, null, 2)}\n`,
    );
    for (const file of trace.files) {
      await mkdir(dirname(join(app, file)), { recursive: true });
      await cp(join(appRoot, file), join(app, file));
    }
    // Nested packages live inside their parent's folder; copying the parent brings them along.
    const copied: string[] = [];
    const placed = new Set<string>();
    for (const pkg of packages) {
      if (copied.some((parent) => pkg.startsWith(parent + sep))) continue;
      const dest = imagePackagePath(appRoot, pkg);
      if (placed.has(dest)) continue;
      copied.push(pkg);
      placed.add(dest);
      const ortBin = join(appRoot, pkg, ORT_BIN_DIR);
      await cp(join(appRoot, pkg), join(app, dest), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (src) => {
          if (src.startsWith(ortBin + sep)) {
            const [os, arch] = relative(ortBin, src).split(sep);
            return os === KEEP_OS && (arch === undefined || arch === KEEP_ARCH);
          }
          return basename(src) !== ".bin";
        },
      });
    }
    const dockerfile = join(dir, "Dockerfile");
    await cp(join(appRoot, SERVER_DOCKERFILE), dockerfile);
    await cp(join(appRoot, ROOTFS_SCRIPT), join(dir, "rootfs.cjs"));
    await writeFile(join(dir, ".dockerignore"), "# staged by modelship build: everything here is needed\n");
    return { dir, dockerfile, distFiles: trace.files, packages, bytes: await dirBytes(dir), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export interface ModelContext {
  dir: string;
  dockerfile: string;
  bytes: number;
  cleanup: () => Promise<void>;
}

/** A model image's context (serving/model.Dockerfile): the Dockerfile and model/ — a few MB. */
export async function stageModelContext(options: {
  bundleDir: string;
  /** Written as one LABEL instruction at the end of the staged Dockerfile. */
  labels: Record<string, string>;
  appRoot?: string;
  tmpRoot?: string;
}): Promise<ModelContext> {
  const bundleDir = resolve(options.bundleDir);
  assertBundleDir(bundleDir);
  const appRoot = options.appRoot ?? findAppRoot();
  const dir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), "modelship-model-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    await mkdir(join(dir, "model"));
    for (const file of [CARD_FILE, MODEL_FILE]) await cp(join(bundleDir, file), join(dir, "model", file));
    const dockerfile = join(dir, "Dockerfile");
    const template = await readFile(join(appRoot, MODEL_DOCKERFILE), "utf8");
    await writeFile(dockerfile, `${template.trimEnd()}\n${labelInstruction(options.labels)}\n`);
    await writeFile(join(dir, ".dockerignore"), "# staged by modelship build: everything here is needed\n");
    return { dir, dockerfile, bytes: await dirBytes(dir), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * `LABEL "k"="v" …` with literal values: quotes, backslashes and `$` (variable expansion) escaped;
 * a value with a line break or other control character is refused.
 */
export function labelInstruction(labels: Record<string, string>): string {
  const quote = (text: string) => {
    if (/\p{Cc}/u.test(text))
      throw new UserError(`image label ${JSON.stringify(text)} contains a control character`);
    return `"${text.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
  };
  const pairs = Object.entries(labels).map(([k, v]) => `${quote(k)}=${quote(v)}`);
  return `LABEL ${pairs.join(" \\\n      ")}`;
}

export function assertBundleDir(bundleDir: string): void {
  for (const file of [CARD_FILE, MODEL_FILE])
    if (!existsSync(join(bundleDir, file)))
      throw new UserError(
        `${join(bundleDir, file)} not found: --model must point at a model bundle directory`,
      );
}
