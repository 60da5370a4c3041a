import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, parseConfigText, resolveTrainSettings } from "../src/config/index.js";
import { UserError } from "../src/util/errors.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mstest-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error("expected a UserError");
}

describe("modelship.yaml", () => {
  it("reports unknown keys with their path and the keys that are accepted", () => {
    const err = errorOf(() => parseConfigText("train:\n  textColum: text\n", "modelship.yaml"));
    expect(err.message).toMatch(
      /^modelship\.yaml: train\.textColum: unknown key \(expected one of: data, textColumn,/,
    );
    const top = errorOf(() => parseConfigText("trian: {}\n", "m.yaml"));
    expect(top.message).toContain("trian: unknown key (expected one of: train, validate");
  });

  it("reports bad values with the key path and what was expected", () => {
    const err = errorOf(() =>
      parseConfigText("train:\n  name: Bad Name\n  labels: [a]\n  out: 3\n", "m.yaml"),
    );
    expect(err.message).toContain("train.name: lower-case letters");
    expect(err.message).toContain("train.labels: list at least two classes");
    expect(err.message).toMatch(/train\.out: .*expected string/);
    const lim = errorOf(() => parseConfigText("validate:\n  maxP95Ms: -1\n", "m.yaml"));
    expect(lim.message).toMatch(/validate\.maxP95Ms: .*>0/);
    expect(lim.exitCode).toBe(2);
  });

  it("rejects YAML syntax errors and non-mappings with one line", () => {
    expect(errorOf(() => parseConfigText("train: [\n", "m.yaml")).message).toMatch(
      /^m\.yaml is not valid YAML/,
    );
    expect(errorOf(() => parseConfigText("- a\n- b\n", "m.yaml")).message).toMatch(/must be a YAML mapping/);
    expect(parseConfigText("", "m.yaml")).toEqual({});
  });

  it("flags override config, config overrides env and defaults; config paths are relative to the file", async () => {
    const file = join(dir, "modelship.yaml");
    await writeFile(
      file,
      "train:\n  data: data/x.csv\n  labelColumn: sentiment\n  name: base\n  out: bundles\n  params: { C: 2 }\nvalidate:\n  maxP95Ms: 50\n",
    );
    const loaded = await loadConfig(file);
    const s = resolveTrainSettings(
      loaded.config,
      loaded.resolvePath,
      { name: "flagged", params: { seed: 1 }, limits: { maxSizeMb: 10 } },
      {},
    );
    expect(s.data).toBe(join(dir, "data/x.csv"));
    expect(s.out).toBe(join(dir, "bundles"));
    expect(s.labelColumn).toBe("sentiment");
    expect(s.textColumn).toBe("text");
    expect(s.name).toBe("flagged");
    expect(s.params).toEqual({ C: 2, seed: 1 });
    expect(s.limits).toEqual({ maxSizeMb: 10, maxLoadMs: 5000, maxP95Ms: 50 });
    const viaEnv = resolveTrainSettings({}, (p) => p, {}, { MODELSHIP_DATA: "/d.csv" });
    expect(viaEnv.data).toBe("/d.csv");
    expect(resolveTrainSettings(loaded.config, loaded.resolvePath, { data: "flag.csv" }, {}).data).toBe(
      "flag.csv",
    );
  });

  it("a missing config file is one clear error", async () => {
    await expect(loadConfig(join(dir, "nope.yaml"))).rejects.toThrow(
      /cannot read config .*nope\.yaml: no such file/,
    );
  });
});
