import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { repoRoot } from "./data.js";
import type { GitHubRecorder, RecordedCall } from "./github-recorder.js";

/**
 * Runs a bundled action the way the GitHub runner does: `node actions/<name>/dist/index.js` in a child
 * process with `INPUT_*` (action.yml defaults applied, names upper-cased, spaces → `_`), `GITHUB_OUTPUT`,
 * `GITHUB_STEP_SUMMARY`, `GITHUB_EVENT_NAME` / `GITHUB_EVENT_PATH` (a real payload from
 * test/fixtures/github/), and `GITHUB_API_URL` pointing at a github-recorder when one is given.
 *
 *   const gh = await startGitHubRecorder();
 *   const r = await runAction("gate-on-metrics", {
 *     inputs: { candidate: dir },            // unknown input names throw (keeps tests and action.yml in sync)
 *     event: "pull_request",                 // or "push" | "workflow_dispatch" | { name, payload }
 *     github: gh,                            // REST calls go to the recorder; r.calls = calls of this run
 *   });
 *   r.exitCode; r.outputs.passed; r.summary; r.errors; r.warnings; r.stdout; r.calls
 *
 * By default the committed bundle runs (what a runner executes; scripts/check-dist.sh keeps it fresh).
 * `const out = await buildActions(tmpDir, "gate-on-metrics")` + `{ distRoot: out }` runs a fresh build of
 * the current sources from outside the workspace instead — like a `uses: owner/repo/actions/x@ref`
 * checkout in the runner's _actions/ folder, so native modules must come from the workspace.
 */
export interface ActionRunOptions {
  inputs?: Record<string, string>;
  event?: "pull_request" | "push" | "workflow_dispatch" | { name: string; payload: unknown };
  github?: GitHubRecorder;
  /** Extra environment (wins over the defaults below). */
  env?: Record<string, string>;
  /** Working directory and GITHUB_WORKSPACE (default: the repository root). */
  workspace?: string;
  timeoutMs?: number;
  /** Folder holding `<name>/dist/index.js` (from `buildActions`); default the repository's actions/. */
  distRoot?: string;
}

export interface ActionRun {
  exitCode: number;
  outputs: Record<string, string>;
  /** Markdown appended to GITHUB_STEP_SUMMARY. */
  summary: string;
  /** `::error::` / `::warning::` workflow commands, decoded. */
  errors: string[];
  warnings: string[];
  stdout: string;
  stderr: string;
  /** REST calls the recorder received during this run. */
  calls: RecordedCall[];
}

export const FIXTURES = join(repoRoot, "test", "fixtures", "github");

export async function runAction(name: string, options: ActionRunOptions = {}): Promise<ActionRun> {
  const actionDir = join(repoRoot, "actions", name);
  const entry = join(options.distRoot ?? join(repoRoot, "actions"), name, "dist", "index.js");
  if (!existsSync(entry)) throw new Error(`${entry} missing: run npm run build:actions`);
  const meta = parseYaml(await readFile(join(actionDir, "action.yml"), "utf8")) as {
    inputs?: Record<string, { default?: string }>;
  };
  const declared = meta.inputs ?? {};
  for (const key of Object.keys(options.inputs ?? {})) {
    if (!(key in declared)) throw new Error(`input '${key}' is not declared in actions/${name}/action.yml`);
  }

  const tmp = await mkdtemp(join(tmpdir(), "mstest-action-"));
  try {
    const outputFile = join(tmp, "output");
    const summaryFile = join(tmp, "summary");
    await writeFile(outputFile, "");
    await writeFile(summaryFile, "");

    const event = options.event ?? "push";
    const eventName = typeof event === "string" ? event : event.name;
    const eventPath = join(tmp, "event.json");
    const payload =
      typeof event === "string"
        ? await readFile(join(FIXTURES, `${event}.json`), "utf8")
        : JSON.stringify(event.payload);
    await writeFile(eventPath, payload);
    const parsed = JSON.parse(payload) as {
      repository?: { full_name?: string };
      after?: string;
      pull_request?: { head?: { sha?: string } };
    };

    const env: Record<string, string> = {};
    // Start clean: nothing from the developer's or CI's own GitHub environment leaks in.
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith("GITHUB_") && !k.startsWith("INPUT_") && !k.startsWith("RUNNER_"))
        env[k] = v;
    }
    const workspace = options.workspace ?? repoRoot;
    Object.assign(env, {
      CI: "true",
      GITHUB_ACTIONS: "true",
      GITHUB_WORKSPACE: workspace,
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      GITHUB_EVENT_NAME: eventName,
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_REPOSITORY: parsed.repository?.full_name ?? "acme/models",
      GITHUB_SHA: parsed.pull_request?.head?.sha ?? parsed.after ?? "0".repeat(40),
      GITHUB_REF: eventName === "pull_request" ? "refs/pull/7/merge" : "refs/heads/main",
      GITHUB_RUN_ID: "4242",
      GITHUB_RUN_ATTEMPT: "1",
      GITHUB_SERVER_URL: "https://github.com",
      GITHUB_API_URL: options.github?.url ?? "http://127.0.0.1:9",
      GITHUB_ACTOR: "octocat",
      GITHUB_JOB: "test",
      RUNNER_TEMP: tmp,
    });
    for (const [key, spec] of Object.entries(declared)) {
      const given = options.inputs?.[key];
      const fallback = typeof spec?.default === "string" ? resolveDefault(spec.default) : "";
      env[`INPUT_${key.replace(/ /g, "_").toUpperCase()}`] = given ?? fallback;
    }
    Object.assign(env, options.env ?? {});

    const before = options.github?.calls.length ?? 0;
    const { code, stdout, stderr } = await spawnNode(entry, env, workspace, options.timeoutMs ?? 120_000);
    return {
      exitCode: code,
      outputs: parseOutputFile(await readFile(outputFile, "utf8")),
      summary: await readFile(summaryFile, "utf8"),
      errors: commands(stdout, "error"),
      warnings: commands(stdout, "warning"),
      stdout,
      stderr,
      calls: options.github ? options.github.calls.slice(before) : [],
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The runner evaluates `${{ github.token }}` defaults; tests get a fixed fake token. */
function resolveDefault(value: string): string {
  return value.replace(/\$\{\{\s*github\.token\s*\}\}/g, "ghs_testtoken");
}

function spawnNode(entry: string, env: Record<string, string>, cwd: string, timeoutMs: number) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    // The runner executes actions with its own Node (action.yml `runs.using: node24`); set
    // MODELSHIP_ACTION_NODE to such a binary to run the bundles exactly so (default: this Node).
    const node = process.env.MODELSHIP_ACTION_NODE || process.execPath;
    const child = spawn(node, [entry], { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, stdout, stderr });
    });
  });
}

/** GITHUB_OUTPUT: `name<<DELIM\nvalue\nDELIM` blocks (what @actions/core writes) or `name=value` lines. */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, key, delim] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i]!);
      out[key!] = value.join("\n");
    } else if (line.includes("=")) {
      const at = line.indexOf("=");
      out[line.slice(0, at)] = line.slice(at + 1);
    }
  }
  return out;
}

function commands(stdout: string, kind: "error" | "warning"): string[] {
  const re = new RegExp(`^::${kind}(?: [^:]*)?::(.*)$`, "gm");
  return [...stdout.matchAll(re)].map((m) =>
    m[1]!.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%"),
  );
}

/** Bundles the named actions into `outDir/<name>/dist/index.js` (never touches the committed dist). */
export async function buildActions(outDir: string, ...names: string[]): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    const script = join(repoRoot, "scripts", "build-actions.mjs");
    const child = spawn(process.execPath, [script, "--out-dir", outDir, ...names], {
      cwd: repoRoot,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`build-actions failed: ${err}`))));
  });
  return outDir;
}
