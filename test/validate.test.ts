import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attr, GraphBuilder } from "../training/onnx/builder.js";
import { trainedBundle } from "./support/bundle.js";
import { runCli } from "./support/cli.js";
import { dataPath } from "./support/data.js";

/** Runs the real CLI; resolves with exit code and both streams instead of throwing. */
const cli = (args: string[]) => runCli(args);

const LABELS = ["cat", "dog", "fish"];
const W = [
  [1.5, -0.5, 0.2, 0.0],
  [-1.0, 1.2, 0.0, 0.3],
  [0.1, 0.1, -1.4, 0.8],
];
const B = [0.1, -0.2, 0.05];

/** A scikit-learn-style multinomial logistic regression as skl2onnx exports it (ai.onnx.ml LinearClassifier). */
function linearClassifier(opts: { zipMap?: boolean; inputType?: "float" | "int64" } = {}): Uint8Array {
  const g = new GraphBuilder("byo-tabular");
  g.input("float_input", { tensor: opts.inputType ?? "float", shape: ["N", 4] });
  const [label, probs] = g.node(
    "LinearClassifier",
    ["float_input"],
    ["label", "probabilities"],
    {
      classlabels_strings: LABELS,
      coefficients: attr.floats(W.flat()),
      intercepts: attr.floats(B),
      multi_class: 1,
      post_transform: "SOFTMAX",
    },
    { domain: "ai.onnx.ml" },
  );
  g.output(label!, { tensor: "string", shape: ["N"] });
  if (opts.zipMap) {
    g.node(
      "ZipMap",
      [probs!],
      ["output_probability"],
      { classlabels_strings: LABELS },
      { domain: "ai.onnx.ml" },
    );
    g.output("output_probability", { sequence: { map: { key: "string", value: { tensor: "float" } } } });
  } else {
    g.output(probs!, { tensor: "float", shape: ["N", 3] });
  }
  return g.toModel({ opsets: { "": 17, "ai.onnx.ml": 3 } });
}

let dir: string;
const files: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mstest-validate-"));
  // 60 rows labelled by the model's own decision rule, 6 of them flipped → accuracy exactly 0.9
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const lines = ["a,b,c,d,species"];
  for (let i = 0; i < 60; i++) {
    const x = [0, 1, 2, 3].map(() => Math.round((rand() * 4 - 2) * 1000) / 1000);
    const scores = W.map((w, c) => w.reduce((s, wi, j) => s + wi * x[j]!, B[c]!));
    let best = scores.indexOf(Math.max(...scores));
    if (i % 10 === 0) best = (best + 1) % 3;
    lines.push(`${x.join(",")},${LABELS[best]}`);
  }
  files.csv = join(dir, "tabular.csv");
  await writeFile(files.csv, `${lines.join("\n")}\n`);
  files.model = join(dir, "linear.onnx");
  await writeFile(files.model, linearClassifier());
  files.zipmap = join(dir, "zipmap.onnx");
  await writeFile(files.zipmap, linearClassifier({ zipMap: true }));
  files.int64 = join(dir, "int64.onnx");
  await writeFile(files.int64, linearClassifier({ inputType: "int64" }));
  files.garbage = join(dir, "garbage.onnx");
  await writeFile(files.garbage, "this is not a protobuf, it is a pickle\n".repeat(10));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tabular = () => ["validate", "--data", files.csv!, "--label-column", "species"];

describe("modelship validate: bring-your-own tabular model", () => {
  it("evaluates a float-input LinearClassifier and passes the checks", async () => {
    const r = await cli([...tabular(), "--model", files.model!, "--feature-columns", "a,b,c,d", "--json"]);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.task).toBe("tabular-classification");
    expect(report.input).toBe("float_input");
    expect(report.labels).toEqual(LABELS);
    expect(report.metrics.accuracy).toBeCloseTo(0.9, 12);
    expect(report.metrics.testRows).toBe(60);
    expect(report.checks.map((c: { name: string }) => c.name)).toEqual([
      "model size",
      "load time",
      "single-row p95 latency",
    ]);
    expect(report.passed).toBe(true);
    expect(report.runtime.batch64RowsPerSec).toBeGreaterThan(0);
  });

  it("prints a metrics table, confusion matrix and checks for humans", async () => {
    const r = await cli([...tabular(), "--model", files.model!, "--feature-columns", "a,b,c,d"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("accuracy 0.900");
    expect(r.stdout).toMatch(/true \\ predicted\s+cat\s+dog\s+fish/);
    expect(r.stdout).toMatch(/single-row p95 latency\s+pass/);
    expect(r.stdout).toContain("validation passed");
  });

  it("a failed check exits 1 and says which", async () => {
    const r = await cli([
      ...tabular(),
      "--model",
      files.model!,
      "--feature-columns",
      "a,b,c,d",
      "--max-size-mb",
      "0.0001",
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/model size\s+FAIL/);
    expect(r.stdout).toContain("validation FAILED");
  });

  it("a ZipMap output is rejected with how to export without it", async () => {
    const r = await cli([...tabular(), "--model", files.zipmap!, "--feature-columns", "a,b,c,d"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/output 'output_probability', which is not a tensor \(a ZipMap/);
    expect(r.stderr).toContain('options={id(model): {"zipmap": False}}');
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("unknown input name, wrong feature count, wrong dtype, text for a tabular model: one clear line each", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["--model", files.model!, "--feature-columns", "a,b,c,d", "--input-name", "nope"],
        /has no input named 'nope'; its inputs: float_input \(float32 \[N, 4\]\)/,
      ],
      [
        ["--model", files.model!, "--feature-columns", "a,b,c"],
        /expects 4 features per row but 3 feature columns/,
      ],
      [
        ["--model", files.int64!, "--feature-columns", "a,b,c,d"],
        /model input 'float_input' is int64 \[N, 4\]/,
      ],
      [
        ["--model", files.model!, "--text-column", "a"],
        /takes numeric features \(float32 \[N, 4\]\): pass --feature-columns/,
      ],
      [["--model", files.model!, "--feature-columns", "a,b,c,zz"], /has no column "zz"/],
      [
        ["--model", files.model!, "--feature-columns", "a,b,c,d", "--labels", "fish,dog,cat"],
        /label output disagrees with the probability columns read as \[fish, dog, cat\]/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli([...tabular(), ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stdout).not.toContain("validation passed");
    }
  });

  it("an unreadable or missing ONNX file is one clear line, exit 2", async () => {
    const bad = await cli([...tabular(), "--model", files.garbage!, "--feature-columns", "a,b,c,d"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^modelship: cannot load ONNX model .*garbage\.onnx: .* — is it an ONNX file/);
    const missing = await cli([
      ...tabular(),
      "--model",
      join(dir, "none.onnx"),
      "--feature-columns",
      "a,b,c,d",
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/model not found: .*none\.onnx/);
  });
});

describe("modelship validate: a trained bundle", () => {
  it("evaluates on the labelled CSV with the bundle's columns and reproduces the golden examples", async () => {
    const bundle = await trainedBundle();
    const r = await cli(["validate", "--model", bundle, "--data", dataPath(), "--json"]);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.task).toBe("text-classification");
    expect(report.data.rows).toBe(11541);
    expect(report.metrics.accuracy).toBeGreaterThan(0.915);
    const golden = report.checks.find((c: { name: string }) => c.name === "golden examples reproduce");
    expect(golden.passed).toBe(true);
    expect(golden.value).toBeLessThanOrEqual(1e-4);
    expect(report.model.bundle.version).toMatch(/^\d{8}\.\d{6}-[0-9a-f]{8}$/);
  });
});
