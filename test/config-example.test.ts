import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { loadConfig, loadTrainSettings } from "../src/config/index.js";
import { loadDriftPolicy, loadGatePolicy } from "../src/config/load.js";
import { modelCardSchema } from "../src/contracts/card.js";
import { dataPath, repoRoot } from "./support/data.js";

const run = promisify(execFile);
const CONFIG = join(repoRoot, "modelship.yaml");

describe("modelship.yaml at the repository root (the workflows' config)", () => {
  it("loads through the real loaders: config, gate policy and drift policy", async () => {
    const { config } = await loadConfig(CONFIG);
    expect(config.train?.labels).toEqual(["negative", "positive"]);
    expect(config.train?.data).toBeUndefined(); // the dataset is never committed; it comes from --data / env

    const gate = await loadGatePolicy(CONFIG);
    expect(gate.minimum.accuracy).toBe(config.gate?.minimum?.accuracy);
    const drift = await loadDriftPolicy(CONFIG);
    expect(drift.retrain.workflow).toBe("deploy.yml");
  });

  it("takes the dataset from MODELSHIP_DATA when no flag is given, and --data wins over it", async () => {
    const saved = process.env.MODELSHIP_DATA;
    try {
      process.env.MODELSHIP_DATA = "/from/env.csv";
      expect((await loadTrainSettings(CONFIG, {})).settings.data).toBe("/from/env.csv");
      expect((await loadTrainSettings(CONFIG, { data: "flag.csv" })).settings.data).toBe("flag.csv");
      delete process.env.MODELSHIP_DATA;
      await expect(loadTrainSettings(CONFIG, {})).rejects.toThrow(/no dataset given/);
    } finally {
      if (saved === undefined) delete process.env.MODELSHIP_DATA;
      else process.env.MODELSHIP_DATA = saved;
    }
  });

  it("trains the airline model through the CLI to accuracy ≥ 0.915 and passes its own checks", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mstest-config-example-"));
    try {
      await trainAndCheck(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

async function trainAndCheck(dir: string): Promise<void> {
  const { stdout } = await run(
    process.execPath,
    ["bin/modelship.js", "train", "--config", "modelship.yaml", "--json", "--out", dir],
    { cwd: repoRoot, env: { ...process.env, MODELSHIP_DATA: dataPath() }, maxBuffer: 16 << 20 },
  );
  const result = JSON.parse(stdout) as {
    bundle: string;
    passed: boolean;
    metrics: { accuracy: number; classes: Record<string, { f1: number }> };
  };
  expect(result.passed).toBe(true);
  expect(result.bundle.startsWith(join(dir, "airline-"))).toBe(true);
  expect(result.metrics.accuracy).toBeGreaterThanOrEqual(0.915);
  // The committed gate floors must not reject the committed training setup.
  const gate = await loadGatePolicy(CONFIG);
  expect(result.metrics.accuracy).toBeGreaterThanOrEqual(gate.minimum.accuracy ?? 0);
  expect(result.metrics.classes.positive!.f1).toBeGreaterThanOrEqual(0.75);

  const card = modelCardSchema.parse(JSON.parse(await readFile(join(result.bundle, "model.json"), "utf8")));
  expect(card.io.labels).toEqual(["negative", "positive"]);
}
