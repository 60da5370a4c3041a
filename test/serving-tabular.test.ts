import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModelCard, modelCardSchema } from "../src/contracts/card.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { sha256 } from "../src/util/fs.js";
import { attr, GraphBuilder } from "../training/onnx/builder.js";
import { postJson, type RunningServer, request, startServer } from "./support/serving.js";

// A bring-your-own tabular model (skl2onnx-style LinearClassifier, FP32 [N, 4] input), packed
// into a bundle whose golden examples come from onnxruntime itself: the FP32 side of /v2 infer.
const LABELS = ["cat", "dog", "fish"];
const W = [
  [1.5, -0.5, 0.2, 0.0],
  [-1.0, 1.2, 0.0, 0.3],
  [0.1, 0.1, -1.4, 0.8],
];
const B = [0.1, -0.2, 0.05];

function linearClassifier(): Uint8Array {
  const g = new GraphBuilder("byo-tabular");
  g.input("float_input", { tensor: "float", shape: ["N", 4] });
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
  g.output(probs!, { tensor: "float", shape: ["N", 3] });
  return g.toModel({ opsets: { "": 17, "ai.onnx.ml": 3 } });
}

let dir: string;
let server: RunningServer;
let card: ModelCard;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mstest-serve-tabular-"));
  const onnx = linearClassifier();
  await writeFile(join(dir, "model.onnx"), onnx);
  const rows = Array.from({ length: 24 }, (_, i) =>
    [((i * 7) % 9) - 4, ((i * 5) % 7) - 3, ((i * 3) % 5) - 2, (i % 4) - 1.5].map((v) => v / 2),
  );
  const session = await ClassifierSession.open(join(dir, "model.onnx"), { labels: LABELS });
  const p = await session.predict(rows);
  await session.release();
  const sha = sha256(onnx);
  const metric = { precision: 1, recall: 1, f1: 1, support: 8 };
  card = modelCardSchema.parse({
    schemaVersion: 1,
    name: "byo-tabular",
    version: `20261122.040000-${sha.slice(0, 8)}`,
    createdAt: new Date().toISOString(),
    git: null,
    model: { file: "model.onnx", sha256: sha, sizeBytes: onnx.byteLength },
    io: {
      task: "tabular-classification",
      inputs: [{ name: "float_input", dtype: "float32", shape: ["N", 4] }],
      outputs: [
        { name: "label", dtype: "string", shape: ["N"] },
        { name: "probabilities", dtype: "float32", shape: ["N", 3] },
      ],
      probabilitiesOutput: "probabilities",
      labelOutput: "label",
      labels: LABELS,
      featureColumns: ["a", "b", "c", "d"],
    },
    dataset: {
      path: "synthetic",
      sha256: sha,
      labelColumn: "species",
      rows: { total: 24, used: 24, dropped: 0, train: 0, test: 24 },
      classCounts: { cat: 8, dog: 8, fish: 8 },
    },
    training: null,
    metrics: {
      accuracy: 1,
      macroF1: 1,
      classes: { cat: metric, dog: metric, fish: metric },
      confusionMatrix: {
        labels: LABELS,
        matrix: [
          [8, 0, 0],
          [0, 8, 0],
          [0, 0, 8],
        ],
      },
      testRows: 24,
    },
    runtime: {
      onnxruntimeVersion: "1.30.0",
      fileSizeBytes: onnx.byteLength,
      loadMs: 1,
      singleRowP50Ms: 0.1,
      singleRowP95Ms: 0.1,
      batch64RowsPerSec: 1000,
    },
    golden: rows.map((input, i) => ({
      input,
      expected: { label: p.labels[i]!, probabilities: Array.from(p.probabilities[i]!) },
    })),
    reference: {
      rows: 24,
      classMix: { cat: 1 / 3, dog: 1 / 3, fish: 1 / 3 },
      scoreHistogram: {
        edges: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
        counts: [0, 0, 0, 4, 4, 4, 4, 4, 4, 0],
      },
    },
  } satisfies ModelCard);
  await writeFile(join(dir, "model.json"), JSON.stringify(card));
  server = await startServer(dir);
});

afterAll(async () => {
  if (server) expect(await server.stop()).toBe(0);
  await rm(dir, { recursive: true, force: true });
});

describe("tabular model over the Open Inference Protocol", () => {
  it("describes an FP32 [N, 4] input", async () => {
    const meta = (await request(`${server.url}/v2/models/byo-tabular`)).json();
    expect(meta).toMatchObject({
      name: "byo-tabular",
      inputs: [{ name: "float_input", datatype: "FP32", shape: [-1, 4] }],
      outputs: [
        { name: "label", datatype: "BYTES", shape: [-1] },
        { name: "probabilities", datatype: "FP32", shape: [-1, 3] },
      ],
    });
  });

  it("infers FP32 rows (flat data) to within 1e-4 of the golden probabilities", async () => {
    const rows = card.golden.map((g) => g.input as number[]);
    const res = await postJson(`${server.url}/v2/models/byo-tabular/infer`, {
      inputs: [{ name: "float_input", shape: [rows.length, 4], datatype: "FP32", data: rows.flat() }],
    });
    expect(res.status, res.text).toBe(200);
    const body = res.json() as { outputs: { name: string; shape: number[]; data: (number | string)[] }[] };
    const probs = body.outputs.find((o) => o.name === "probabilities")!;
    const labels = body.outputs.find((o) => o.name === "label")!;
    expect(probs.shape).toEqual([rows.length, 3]);
    card.golden.forEach((g, i) => {
      g.expected.probabilities.forEach((p, j) => {
        expect(Math.abs((probs.data[i * 3 + j] as number) - p)).toBeLessThanOrEqual(1e-4);
      });
      expect(labels.data[i]).toBe(g.expected.label);
    });
  });

  it("rejects wrong widths, non-numbers and text input with 400, and /predict points to infer", async () => {
    const infer = (input: Record<string, unknown>) =>
      postJson(`${server.url}/v2/models/byo-tabular/infer`, {
        inputs: [{ name: "float_input", datatype: "FP32", ...input }],
      });
    const cases: [Promise<{ status: number; json: () => unknown }>, RegExp][] = [
      [infer({ shape: [1, 3], data: [1, 2, 3] }), /must have shape \[N, 4\], got \[1, 3\]/],
      [infer({ shape: [1, 4], data: [1, 2, "x", 4] }), /element \[0, 2\] must be a finite number/],
      [infer({ shape: [1, 4], data: [1, 2, 3, 4], datatype: "BYTES" }), /must have datatype FP32, got BYTES/],
      [
        postJson(`${server.url}/predict`, { text: "a cat?" }),
        /takes feature vectors, not text; use POST \/v2\/models\/byo-tabular\/infer/,
      ],
    ];
    for (const [pending, message] of cases) {
      const res = await pending;
      expect(res.status).toBe(400);
      expect((res.json() as { error: string }).error).toMatch(message);
    }
  });
});
