import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { INPUT_NAMES } from "../actions/train-and-validate/input-helper.js";
import { readBundle } from "../src/bundle/read.js";
import { buildActions, runAction } from "./support/action-runner.js";
import { trainedBundle } from "./support/bundle.js";
import { byo } from "./support/byo.js";
import { dataPath, repoRoot } from "./support/data.js";

describe("train-and-validate action, run like the runner runs it", () => {
  let dir: string;
  let dist: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mstest-action-train-"));
    dist = await buildActions(join(dir, "dist"), "train-and-validate");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("declares every input the adapter reads, with a description, and the four outputs", async () => {
    const meta = parseYaml(await readFile(join(repoRoot, "actions/train-and-validate/action.yml"), "utf8"));
    expect(Object.keys(meta.inputs).sort()).toEqual([...INPUT_NAMES].sort());
    for (const [name, spec] of Object.entries<{ description?: string; default?: string }>(meta.inputs)) {
      expect(spec.description, name).toBeTruthy();
      expect(typeof spec.default, name).toBe("string");
    }
    expect(Object.keys(meta.outputs).sort()).toEqual(["bundle", "metrics", "passed", "version"]);
    expect(meta.runs).toEqual({ using: "node24", main: "dist/index.js" });
  });

  it("trains a bundle from modelship.yaml + inputs, sets outputs and writes the job summary", async () => {
    const config = join(dir, "modelship.yaml");
    await writeFile(
      config,
      `train:\n  data: ${dataPath()}\n  labels: [negative, positive]\n  params:\n    cvFolds: 2\n`,
    );
    const out = join(dir, "models");
    const r = await runAction("train-and-validate", {
      inputs: { config, out, name: "airline-action" },
      distRoot: dist,
      timeoutMs: 300_000,
    });
    expect(r.errors, r.stdout + r.stderr).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(r.outputs.passed).toBe("true");
    expect(r.outputs.bundle).toBe(join(out, `airline-action-${r.outputs.version}`));
    const { card } = await readBundle(r.outputs.bundle!);
    const metrics = JSON.parse(r.outputs.metrics!);
    expect(metrics).toEqual(card.metrics);
    expect(metrics.accuracy).toBeGreaterThanOrEqual(0.915);
    expect(metrics.classes.positive.f1).toBeGreaterThanOrEqual(0.79);
    // summary: verdict, metrics table, confusion matrix with the real counts, checks
    expect(r.summary).toContain(`## ✅ modelship train: airline-action ${r.outputs.version}`);
    expect(r.summary).toContain("| class | precision | recall | f1 | support |");
    expect(r.summary).toContain(`| positive | ${metrics.classes.positive.precision.toFixed(3)} |`);
    const [[tn, fp], [fn, tp]] = metrics.confusionMatrix.matrix;
    expect(r.summary).toContain(`| negative | ${tn} | ${fp} |`);
    expect(r.summary).toContain(`| positive | ${fn} | ${tp} |`);
    expect(r.summary).toMatch(/\| single-row p95 latency \| ✅ pass \|/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colours from the log
    expect(r.stdout.replace(/\u001b\[\d+m/g, "")).toContain("parity check... ✓ max |Δp|");
  });

  it("validates a bring-your-own bundle and fails the step when a check fails", async () => {
    const bundle = await trainedBundle();
    const r = await runAction("train-and-validate", {
      inputs: { model: bundle, data: dataPath(), "max-size-mb": "0.01" },
      distRoot: dist,
    });
    expect(r.exitCode).toBe(1);
    expect(r.outputs.passed).toBe("false");
    expect(r.outputs.bundle).toBe(bundle);
    expect(r.outputs.version).toMatch(/^\d{8}\.\d{6}-[0-9a-f]{8}$/);
    expect(JSON.parse(r.outputs.metrics!).accuracy).toBeGreaterThan(0.9);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^checks failed: model size \(0\.\d+ MB ≥ 0\.01 MB\)$/);
    expect(r.summary).toContain("## ❌ modelship validate:");
    expect(r.summary).toMatch(/\| model size \| ❌ fail \|/);
    expect(r.summary).toMatch(/\| golden examples reproduce \| ✅ pass \|/);
  });

  it("a bare .onnx trained elsewhere (skl2onnx ZipMap export) comes out as a bundle", async () => {
    const out = join(dir, "byo");
    const r = await runAction("train-and-validate", {
      inputs: {
        model: byo("iris-logreg-zipmap.onnx"),
        data: byo("iris-test.csv"),
        reference: byo("iris.csv"),
        out,
        name: "iris",
      },
      distRoot: dist,
    });
    expect(r.errors, r.stdout + r.stderr).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(r.outputs.bundle).toBe(join(out, `iris-${r.outputs.version}`));
    const { card } = await readBundle(r.outputs.bundle!);
    expect(card.origin?.transforms[0]).toMatch(/removed ZipMap/);
    expect(JSON.parse(r.outputs.metrics!).accuracy).toBeCloseTo(0.9778, 3);
    expect(r.summary).toContain(`## ✅ modelship package: iris ${r.outputs.version}`);
    expect(r.summary).toMatch(/served graph vs the original: max \|Δp\| 0\.0e\+0 over every row/);
    const bad = await runAction("train-and-validate", {
      inputs: {
        model: byo("wine-gbm.onnx"),
        data: byo("wine-test.csv"),
        labels: "x,y,z",
        out: join(dir, "byo-bad"),
      },
      distRoot: dist,
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.errors).toHaveLength(1);
    expect(bad.errors[0]).toMatch(/^classes disagree: graph \[cultivar_a, cultivar_b, cultivar_c\]/);
    expect(bad.outputs).toEqual({});
  });

  it("bad inputs fail the step with one readable line and no outputs", async () => {
    const bad = await runAction("train-and-validate", {
      inputs: { data: dataPath(), "max-p95-ms": "fast" },
      distRoot: dist,
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.errors).toEqual([`input 'max-p95-ms': max-p95-ms: expected a positive number, got "fast"`]);
    expect(bad.outputs).toEqual({});

    const missing = await runAction("train-and-validate", {
      inputs: { data: join(dir, "nope.csv"), out: join(dir, "never") },
      distRoot: dist,
    });
    expect(missing.exitCode).toBe(1);
    expect(missing.errors).toEqual([`dataset not found: ${join(dir, "nope.csv")} — check the --data path`]);
  });
});
