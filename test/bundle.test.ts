import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import { StagedBundle } from "../src/bundle/write.js";
import { CARD_FILE, MODEL_FILE, type ModelCard, modelCardSchema } from "../src/contracts/card.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { trainedBundle } from "./support/bundle.js";

let binary: string;
let card: ModelCard;
let scratch: string;

beforeAll(async () => {
  binary = await trainedBundle();
  card = (await readBundle(binary)).card;
  scratch = await mkdtemp(join(tmpdir(), "mstest-bundle-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("binary bundle trained on the airline dataset", () => {
  it("meets the acceptance metrics at the exact paths scripts read", async () => {
    const raw = JSON.parse(await readFile(join(binary, CARD_FILE), "utf8"));
    expect(modelCardSchema.parse(raw)).toBeTruthy();
    expect(raw.metrics.accuracy).toBeGreaterThanOrEqual(0.915);
    expect(raw.metrics.classes.positive.f1).toBeGreaterThanOrEqual(0.79);
    expect(raw.metrics.classes.negative.f1).toBeGreaterThan(0.9);
    expect(raw.metrics.rocAuc).toBeGreaterThan(0.9);
    expect(raw.metrics.cv.folds).toBe(5);
    expect(raw.dataset.rows).toEqual({ total: 14640, used: 11541, dropped: 3099, train: 9232, test: 2309 });
    expect(raw.dataset.sha256).toBe("d506e433829436f3ea9bcb5576bd0e39b7de18ddb9c1eb00a72df2bbc398810c");
    expect(raw.io.labels).toEqual(["negative", "positive"]);
  });

  it("is named <name>-<version> with version = UTC time + 8 hex of the model sha256", () => {
    expect(card.version).toMatch(/^\d{8}\.\d{6}-[0-9a-f]{8}$/);
    expect(card.version.endsWith(card.model.sha256.slice(0, 8))).toBe(true);
    expect(binary.endsWith(`${card.name}-${card.version}`)).toBe(true);
  });

  it("has ≥ 20 golden examples from every class that reproduce under onnxruntime-node", async () => {
    expect(card.golden.length).toBeGreaterThanOrEqual(20);
    const texts = card.golden.map((g) => g.input as string);
    const session = await ClassifierSession.open(join(binary, MODEL_FILE), { labels: card.io.labels });
    try {
      const { probabilities, labels } = await session.predict(texts);
      card.golden.forEach((g, i) => {
        expect(labels[i]).toBe(g.expected.label);
        g.expected.probabilities.forEach((p, c) => {
          expect(Math.abs(p - probabilities[i]![c]!)).toBeLessThanOrEqual(1e-6);
        });
      });
    } finally {
      await session.release();
    }
    // stratified by true class: both classes are among the expected labels, with a spread of confidence
    const predicted = new Set(card.golden.map((g) => g.expected.label));
    expect(predicted).toEqual(new Set(["negative", "positive"]));
    const confidences = card.golden.map((g) => Math.max(...g.expected.probabilities));
    expect(Math.min(...confidences)).toBeLessThan(0.75);
    expect(Math.max(...confidences)).toBeGreaterThan(0.95);
  });

  it("records a reference distribution on the test split", () => {
    const ref = card.reference;
    expect(ref.rows).toBe(2309);
    expect(Object.values(ref.classMix).reduce((a, b) => a + b)).toBeCloseTo(1, 9);
    expect(ref.scoreHistogram.counts.reduce((a, b) => a + b)).toBe(2309);
    expect(ref.scoreHistogram.edges).toHaveLength(11);
    // confidence of the predicted class is ≥ 0.5 for a binary model
    expect(ref.scoreHistogram.counts.slice(0, 5).every((c) => c === 0)).toBe(true);
    expect(ref.inputLengthHistogram!.counts.reduce((a, b) => a + b)).toBe(2309);
  });

  it("records runtime figures measured with onnxruntime-node", () => {
    const rt = card.runtime;
    expect(rt.onnxruntimeVersion).toBe("1.30.0");
    expect(rt.fileSizeBytes).toBe(card.model.sizeBytes);
    expect(rt.singleRowP50Ms).toBeGreaterThan(0);
    expect(rt.singleRowP95Ms).toBeGreaterThanOrEqual(rt.singleRowP50Ms);
    expect(rt.batch64RowsPerSec).toBeGreaterThan(0);
  });
});

describe("bundle immutability", () => {
  it("never overwrites an existing version and leaves no partial directory", async () => {
    const out = join(scratch, "immutable");
    const onnx = await readFile(join(binary, MODEL_FILE));
    const now = new Date("2026-01-02T03:04:05Z");
    const first = await StagedBundle.create({ name: "same", outDir: out, onnx, now });
    const { dir } = await first.commit(contentOf(card), card.runtime);
    expect(dir).toBe(join(out, `same-20260102.030405-${card.model.sha256.slice(0, 8)}`));
    const before = await readFile(join(dir, CARD_FILE), "utf8");
    await expect(StagedBundle.create({ name: "same", outDir: out, onnx, now })).rejects.toThrow(
      /already exists; bundles are immutable/,
    );
    expect(await readFile(join(dir, CARD_FILE), "utf8")).toBe(before);
    expect(await readdir(out)).toEqual([`same-20260102.030405-${card.model.sha256.slice(0, 8)}`]);
  });

  it("a version that appears while staging is not replaced", async () => {
    const out = join(scratch, "race");
    const onnx = await readFile(join(binary, MODEL_FILE));
    const now = new Date("2026-01-02T03:04:06Z");
    const a = await StagedBundle.create({ name: "race", outDir: out, onnx, now });
    const b = await StagedBundle.create({ name: "race", outDir: out, onnx, now });
    await a.commit(contentOf(card), card.runtime);
    await expect(b.commit(contentOf(card), card.runtime)).rejects.toThrow(/already exists/);
    await b.discard();
    expect((await readdir(out)).filter((e) => e.startsWith("."))).toEqual([]);
  });

  it("a card that fails the schema leaves nothing behind", async () => {
    const out = join(scratch, "invalid");
    const onnx = await readFile(join(binary, MODEL_FILE));
    const staged = await StagedBundle.create({ name: "bad", outDir: out, onnx });
    try {
      await expect(
        staged.commit({ ...contentOf(card), golden: card.golden.slice(0, 3) }, card.runtime),
      ).rejects.toThrow();
    } finally {
      await staged.discard();
    }
    expect(await readdir(out)).toEqual([]);
  });

  it("readBundle rejects a modified model.onnx and a card that breaks the schema", async () => {
    const copy = join(scratch, "tampered");
    await cp(binary, copy, { recursive: true });
    const bytes = await readFile(join(copy, MODEL_FILE));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(join(copy, MODEL_FILE), bytes);
    await expect(readBundle(copy)).rejects.toThrow(/sha256 .* does not match model\.json/);

    const broken = join(scratch, "broken-card");
    await cp(binary, broken, { recursive: true });
    const raw = JSON.parse(await readFile(join(broken, CARD_FILE), "utf8"));
    raw.metrics.accuracy = 1.5;
    await writeFile(join(broken, CARD_FILE), JSON.stringify(raw));
    await expect(readBundle(broken)).rejects.toThrow(/metrics\.accuracy/);
    await expect(readBundle(scratch)).rejects.toThrow(/is not a model bundle \(no model\.json\)/);
  });
});

describe("other trained variants", () => {
  it("three-class trains and reports per-class metrics", async () => {
    const dir = await trainedBundle({ classes: "three-class" });
    const { card: three } = await readBundle(dir);
    expect(three.io.labels).toEqual(["negative", "neutral", "positive"]);
    expect(Object.keys(three.metrics.classes)).toEqual(["negative", "neutral", "positive"]);
    expect(three.metrics.rocAuc).toBeUndefined();
    expect(three.metrics.accuracy).toBeGreaterThan(0.75);
    expect(three.metrics.confusionMatrix.matrix).toHaveLength(3);
    expect(three.dataset.rows.used).toBe(14640);
  });

  it("the swapped model answers with flipped predictions", async () => {
    const dir = await trainedBundle({ swapped: true });
    const { card: wrong, modelPath } = await readBundle(dir);
    expect(wrong.training?.params.labelMap).toEqual({ positive: "negative", negative: "positive" });
    const texts = [
      "thank you so much, great flight and lovely crew!",
      "worst airline ever, lost my bag and rude staff",
    ];
    const good = await ClassifierSession.open(join(binary, MODEL_FILE), { labels: card.io.labels });
    const bad = await ClassifierSession.open(modelPath, { labels: wrong.io.labels });
    try {
      expect((await good.predict(texts)).labels).toEqual(["positive", "negative"]);
      expect((await bad.predict(texts)).labels).toEqual(["negative", "positive"]);
    } finally {
      await good.release();
      await bad.release();
    }
  });
});

function contentOf(c: ModelCard) {
  const { io, dataset, training, metrics, golden, reference } = c;
  return { io, dataset, training, metrics, golden, reference };
}
