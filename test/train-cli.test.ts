import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import { runCli } from "./support/cli.js";
import { dataPath } from "./support/data.js";

const cli = (args: string[]) => runCli(args);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mstest-train-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function csv(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** Every entry below `out` (hidden ones included): must stay empty after a failed train. */
async function leftovers(out: string): Promise<string[]> {
  try {
    return await readdir(out, { recursive: true });
  } catch {
    return [];
  }
}

describe("modelship train: bad input → one clear line, non-zero exit, no bundle", () => {
  const cases: { name: string; args: () => Promise<string[]>; code: number; message: RegExp }[] = [
    {
      name: "missing file",
      args: async () => ["--data", join(dir, "nope.csv")],
      code: 2,
      message: /dataset not found: .*nope\.csv/,
    },
    {
      name: "empty CSV",
      args: async () => ["--data", await csv("empty.csv", "")],
      code: 2,
      message: /dataset .*empty\.csv is empty/,
    },
    {
      name: "header only",
      args: async () => ["--data", await csv("header.csv", "text,airline_sentiment\r")],
      code: 2,
      message: /has a header but no data rows/,
    },
    {
      name: "missing columns",
      args: async () => ["--data", dataPath(), "--text-column", "tweet"],
      code: 2,
      message: /has no column "tweet" — available columns: .*"text"/,
    },
    {
      name: "a single class",
      args: async () => [
        "--data",
        await csv("one.csv", "text,airline_sentiment\nnice flight,positive\ngreat crew,positive\n"),
      ],
      code: 2,
      message: /has only one class \("positive"\)/,
    },
    {
      name: "labels not in the subset",
      args: async () => ["--data", dataPath(), "--labels", "negative,happy"],
      code: 2,
      message: /label\(s\) "happy" never occur in column "airline_sentiment"/,
    },
    {
      name: "rows with empty text",
      args: async () => [
        "--data",
        await csv("blank.csv", 'text,airline_sentiment\nnice flight,positive\n"  ",negative\nbad,negative\n'),
      ],
      code: 2,
      message: /1 row\(s\) with empty text or an empty label, at line\(s\) 3/,
    },
    {
      name: "too few rows for a test split with golden examples",
      args: async () => [
        "--data",
        await csv(
          "small.csv",
          `text,airline_sentiment\n${Array.from({ length: 40 }, (_, i) => `tweet number ${i},${i % 2 ? "positive" : "negative"}`).join("\n")}\n`,
        ),
      ],
      code: 2,
      message: /the test split has 8 rows; a bundle needs at least 20/,
    },
    {
      name: "a bad label-map flag",
      args: async () => ["--data", dataPath(), "--label-map", "positive"],
      code: 2,
      message: /expected from=to pairs/,
    },
    {
      name: "an unknown trainer param in the config",
      args: async () => [
        "--config",
        await csv("bad.yaml", "train:\n  params:\n    Cee: 4\n"),
        "--data",
        dataPath(),
      ],
      code: 2,
      message: /bad\.yaml: train\.params\.Cee: unknown key \(expected one of: .*\bC\b/,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const out = join(dir, `out-${c.name.replace(/\W+/g, "-")}`);
      const r = await cli(["train", ...(await c.args()), "--out", out]);
      expect(r.code, r.stderr).toBe(c.code);
      // commander's usage errors add its standard "(run with --help for usage)" pointer
      const lines = r.stderr
        .trim()
        .split("\n")
        .filter((l) => l !== "(run with --help for usage)");
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(c.message);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
      expect(await leftovers(out)).toEqual([]);
    });
  }

  it("output directory not writable", async () => {
    const file = await csv("a-file", "not a directory");
    const r = await cli([
      "train",
      "--data",
      dataPath(),
      "--labels",
      "negative,positive",
      "--out",
      join(file, "models"),
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toMatch(
      /^modelship: output directory .*a-file\/models is not writable \(a path component is a file\)/,
    );
    // read-only directory (meaningful only when not running as root, which bypasses permissions)
    if (process.getuid?.() !== 0) {
      const ro = join(dir, "ro");
      await mkdir(ro);
      await chmod(ro, 0o555);
      const r2 = await cli(["train", "--data", dataPath(), "--out", ro]);
      expect(r2.code).toBe(3);
      expect(r2.stderr).toMatch(/is not writable \(permission denied\)/);
      expect(await leftovers(ro)).toEqual([]);
    }
  });
});

describe("modelship train with modelship.yaml", () => {
  it("trains from config, flags override it, and --json prints exactly one object", async () => {
    const config = join(dir, "cfg", "modelship.yaml");
    await mkdir(join(dir, "cfg"));
    await writeFile(
      config,
      [
        "train:",
        `  data: ${dataPath()}`,
        "  labels: [negative, positive]",
        "  name: from-config",
        "  out: bundles",
        "  params:",
        "    cvFolds: 2",
        "validate:",
        "  maxP95Ms: 100",
        "",
      ].join("\n"),
    );
    const r = await cli(["train", "--config", config, "--name", "from-flag", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!);
    expect(Object.keys(doc).slice(0, 3)).toEqual(["bundle", "version", "metrics"]);
    expect(doc.bundle).toBe(join(dir, "cfg", "bundles", `from-flag-${doc.version}`));
    expect(doc.metrics.accuracy).toBeGreaterThanOrEqual(0.915);
    expect(doc.metrics.classes.positive.f1).toBeGreaterThanOrEqual(0.79);
    expect(doc.metrics.cv.folds).toBe(2);
    expect(doc.passed).toBe(true);
    // progress went to stderr, step by step
    for (const step of [
      "load data",
      "split",
      "cross-validate",
      "train",
      "export ONNX",
      "parity check",
      "measure runtime",
      "write bundle",
    ]) {
      expect(r.stderr).toContain(`${step}... ✓`);
    }
    const { card } = await readBundle(doc.bundle);
    expect(card.name).toBe("from-flag");
    expect(card.training?.params.cvFolds).toBe(2);
    expect(JSON.parse(await readFile(join(doc.bundle, "model.json"), "utf8")).metrics.accuracy).toBe(
      doc.metrics.accuracy,
    );
    expect((await readdir(join(dir, "cfg", "bundles"))).filter((e) => e.startsWith("."))).toEqual([]);
  });
});

describe("modelship train interrupted", () => {
  it("SIGTERM while the bundle is being staged leaves no partial directory", async () => {
    const config = join(dir, "interrupt.yaml");
    await writeFile(config, "train:\n  labels: [negative, positive]\n  params:\n    cvFolds: 2\n");
    const out = join(dir, "interrupted");
    const child = spawn(
      "node",
      ["bin/modelship.js", "train", "--config", config, "--data", dataPath(), "--out", out],
      {
        stdio: "ignore",
      },
    );
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on("exit", (code, signal) => resolve(signal ?? code)),
    );
    let sawPartial = false;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const entries = await leftovers(out);
      if (entries.some((e) => e.endsWith(".partial"))) {
        sawPartial = true;
        child.kill("SIGTERM");
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(sawPartial).toBe(true);
    expect(await exited).toBe("SIGTERM");
    expect(await leftovers(out)).toEqual([]);
  });
});
