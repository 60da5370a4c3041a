import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import { StagedBundle } from "../src/bundle/write.js";
import type { ModelCard } from "../src/contracts/card.js";
import { loadTextDataset } from "../src/data/dataset.js";
import { argmax } from "../src/metrics/index.js";
import { modelProtoType } from "../src/onnx/model-proto.js";
import { stratifiedSplit, type TrainedTextModel, trainTextClassifier } from "../training/index.js";
import { trainedBundle } from "./support/bundle.js";
import { dataPath } from "./support/data.js";
import { postJson, type RunningServer, request, startServer } from "./support/serving.js";

/**
 * Bundles trained before the sparse text graph carry the dense one (TfIdfVectorizer → MatMul). Such a
 * bundle is built here the way those versions built it — the same model (same data, split and params
 * as the suite's CLI-trained bundle) exported by the dense exporter, with that bundle's card — and
 * served by today's server: it must pass its golden check, answer /predict like the trainer and
 * keep drift's OOV statistic (read from the dense graph's vocabulary).
 */
let server: RunningServer;
let model: TrainedTextModel;
let card: ModelCard;
let out: string;

beforeAll(async () => {
  const current = (await readBundle(await trainedBundle())).card;
  const training = current.training!;
  const params = { ...training.params };
  delete params.labelSubset;
  delete params.labelMap;
  const ds = loadTextDataset({
    path: dataPath(),
    textColumn: current.dataset.textColumn!,
    labelColumn: current.dataset.labelColumn,
    labels: current.io.labels,
  });
  const split = stratifiedSplit(
    ds.examples.map((e) => e.label),
    training.params.testSize as number,
    training.seed,
  );
  model = trainTextClassifier(
    split.train.map((i) => ds.examples[i]!),
    params,
  );
  const onnx = model.toOnnx({ name: current.name, graph: "dense" });
  const ops = (
    modelProtoType().decode(onnx) as unknown as { graph: { node: { op_type: string }[] } }
  ).graph.node.map((n) => n.op_type);
  expect(ops).toContain("TfIdfVectorizer");

  out = await mkdtemp(join(tmpdir(), "modelship-compat-"));
  const { schemaVersion, name, version, createdAt, git, model: file, runtime, ...content } = current;
  const staged = await StagedBundle.create({ name: `${name}-dense`, outDir: out, onnx });
  try {
    ({ card } = await staged.commit(content, runtime));
  } finally {
    await staged.discard();
  }
  server = await startServer(staged.dir, {
    MODELSHIP_WORKERS: "1",
    MODELSHIP_DRIFT_WINDOW: "40",
    MODELSHIP_DRIFT_CHUNK: "1",
    MODELSHIP_DRIFT_OOV_EVERY: "1",
  });
});

afterAll(async () => {
  if (server) expect(await server.stop()).toBe(0);
  if (out) await rm(out, { recursive: true, force: true });
});

describe("a bundle with the dense text graph (written before the sparse one)", () => {
  it("loads, reproduces its golden examples and reports itself", async () => {
    const ready = server.logs.find((l) => l.msg === "ready" && l.role === "primary");
    expect(ready).toBeDefined();
    const info = (await request(`${server.url}/model-info`)).json() as Record<string, unknown>;
    expect(info).toMatchObject({ version: card.version, sha256: card.model.sha256 });
  });

  it("answers /predict, single and batch, as the trainer does", async () => {
    const texts = card.golden.map((g) => g.input as string);
    const expected = model.predictProba(texts);
    const single = (await postJson(`${server.url}/predict`, { text: texts[0] })).json() as {
      sentiment: string;
      confidence: number;
    };
    expect(single.sentiment).toBe(model.labels[argmax(expected[0]!)]);
    expect(single.confidence).toBeCloseTo(Math.max(...expected[0]!) * 100, 1);
    const batch = await postJson(`${server.url}/predict`, { texts });
    expect(batch.status).toBe(200);
    const predictions = (batch.json() as { predictions: { sentiment: string; confidence: number }[] })
      .predictions;
    predictions.forEach((p, i) => {
      expect(p.sentiment).toBe(model.labels[argmax(expected[i]!)]);
      expect(p.confidence).toBeCloseTo(Math.max(...expected[i]!) * 100, 1);
    });
  });

  it("keeps drift's OOV rate (vocabulary read from the TfIdfVectorizer)", async () => {
    const texts = Array.from(
      { length: 40 },
      (_, i) => `${card.golden[i % card.golden.length]!.input} zzqx${i}`,
    );
    expect((await postJson(`${server.url}/predict`, { texts })).status).toBe(200);
    let oov: number | null | undefined;
    for (let attempt = 0; attempt < 50 && (oov === undefined || oov === null); attempt++) {
      const report = (await request(`${server.url}/drift`)).json() as {
        statistics: { name: string; value: number | null }[];
      };
      oov = report.statistics.find((s) => s.name === "oov_rate")?.value;
      if (oov === null || oov === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(oov).toBeGreaterThan(0);
    expect(oov).toBeLessThan(1);
  });
});
