import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelCard } from "../src/contracts/card.js";
import { loadCsv } from "../src/data/dataset.js";
import { createRng } from "../training/random.js";
import { byo } from "./support/byo.js";
import { byoBundle } from "./support/byo-bundles.js";
import { postJson, type RunningServer, request, startServer } from "./support/serving.js";

/**
 * The real server (dist/serving/main.js) on packaged Python exports: tabular /predict with named
 * features (single and batch), integer labels answered as the user's integers, every bad feature a
 * 400 naming it, the range guard, OIP v2 unchanged, a text BYO model answering like a trained one,
 * and per-feature drift naming the feature that moved within one window.
 */
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
let iris: string;
let irisCard: ModelCard;
let server: RunningServer;
let guarded: RunningServer | undefined;
const rows = loadCsv(byo("iris.csv")).rows.map((r) =>
  Object.fromEntries(FEATURES.map((f) => [f, Number(r[f])])),
);

beforeAll(async () => {
  iris = await byoBundle("iris-logreg-zipmap");
  irisCard = JSON.parse(await readFile(join(iris, "model.json"), "utf8"));
  server = await startServer(iris, {
    MODELSHIP_DRIFT_WINDOW: "1000",
    MODELSHIP_DRIFT_CHUNK: "50",
    MODELSHIP_DRIFT_FLUSH_MS: "50",
  });
});
afterAll(async () => {
  await server?.stop();
  await guarded?.stop();
});

describe("tabular /predict with named features (iris, integer labels)", () => {
  it("answers label (the user's integer), its probability, all class probabilities and model_version", async () => {
    const g = irisCard.golden[0]!;
    const features = Object.fromEntries(FEATURES.map((f, i) => [f, (g.input as number[])[i]]));
    const res = await postJson(`${server.url}/predict`, { features });
    expect(res.status, res.text).toBe(200);
    const body = res.json() as {
      label: number;
      probability: number;
      probabilities: Record<string, number>;
      model_version: string;
    };
    expect(body.label).toBe(Number(g.expected.label));
    expect(typeof body.label).toBe("number");
    expect(body.model_version).toBe(irisCard.version);
    expect(Object.keys(body.probabilities)).toEqual(["0", "1", "2"]);
    Object.values(body.probabilities).forEach((p, i) => {
      expect(Math.abs(p - g.expected.probabilities[i]!)).toBeLessThanOrEqual(1e-6);
    });
    expect(body.probability).toBe(Math.max(...Object.values(body.probabilities)));
  });

  it("batch form: one prediction per row, in order", async () => {
    const batch = irisCard.golden.map((g) =>
      Object.fromEntries(FEATURES.map((f, i) => [f, (g.input as number[])[i]])),
    );
    const res = await postJson(`${server.url}/predict`, { features: batch });
    expect(res.status, res.text).toBe(200);
    const body = res.json() as { predictions: { label: number }[]; model_version: string };
    expect(body.predictions.map((p) => String(p.label))).toEqual(
      irisCard.golden.map((g) => g.expected.label),
    );
    expect(body.model_version).toBe(irisCard.version);
  });

  it("bad features → 400 naming the feature", async () => {
    const ok = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
    const cases: [unknown, RegExp][] = [
      [{ features: { ...ok, petal_width: undefined } }, /feature "petal_width" is missing/],
      [
        { features: { ...ok, colour: 3 } },
        /unknown feature "colour"; the model takes: sepal_length, sepal_width, petal_length, petal_width/,
      ],
      [{ features: { ...ok, sepal_width: "wide" } }, /feature "sepal_width" must be a number, got "wide"/],
      [{ features: { ...ok, sepal_width: "NaN" } }, /feature "sepal_width" must be a number, got "NaN"/],
      [{ features: { ...ok, sepal_width: null } }, /feature "sepal_width" must be a number, got null/],
      [
        { features: [ok, { ...ok, petal_length: true }] },
        /feature "petal_length" must be a number \(row 1\)/,
      ],
      [{ features: [] }, /body must be \{"features"/],
      [{ feature: ok }, /unexpected field "feature"/],
      [{ text: "hello" }, /takes feature vectors, not text; use POST \/v2\/models\/iris\/infer/],
      [[1, 2, 3, 4], /body must be an object/],
    ];
    for (const [body, message] of cases) {
      const res = await postJson(`${server.url}/predict`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((res.json() as { error: string }).error).toMatch(message);
    }
    // JSON has no NaN/Infinity literals, but 1e999 parses to Infinity
    const inf = await postJson(
      `${server.url}/predict`,
      '{"features": {"sepal_length": 1e999, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}}',
    );
    expect(inf.status).toBe(400);
    expect((inf.json() as { error: string }).error).toMatch(/feature "sepal_length" must be a finite number/);
  });

  it("range guard: warn (default) answers with a warning naming the feature; reject answers 400", async () => {
    const far = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 42, petal_width: 0.2 };
    const warn = await postJson(`${server.url}/predict`, { features: far });
    expect(warn.status).toBe(200);
    expect((warn.json() as { warnings: string[] }).warnings).toEqual([
      'feature "petal_length" = 42 is outside the range seen in the reference data [1, 6.9]',
    ]);
    guarded = await startServer(iris, { MODELSHIP_RANGE_GUARD: "reject", MODELSHIP_DRIFT: "false" });
    const reject = await postJson(`${guarded.url}/predict`, { features: far });
    expect(reject.status).toBe(400);
    expect((reject.json() as { error: string }).error).toMatch(
      /feature "petal_length" = 42 is outside .*\(range guard: reject\)/,
    );
    const inside = await postJson(`${guarded.url}/predict`, { features: rows[0] });
    expect(inside.status).toBe(200);
    expect(inside.json()).not.toHaveProperty("warnings");
  });

  it("OIP v2 keeps working on the packaged (ZipMap-free) graph", async () => {
    const res = await postJson(`${server.url}/v2/models/iris/infer`, {
      inputs: [
        {
          name: "float_input",
          shape: [2, 4],
          datatype: "FP32",
          data: [...(irisCard.golden[0]!.input as number[]), ...(irisCard.golden[1]!.input as number[])],
        },
      ],
    });
    expect(res.status, res.text).toBe(200);
    const out = (res.json() as { outputs: { name: string; data: number[] }[] }).outputs.find(
      (o) => o.name === "probabilities",
    )!;
    expect(
      out.data.slice(0, 3).map((p, i) => Math.abs(p - irisCard.golden[0]!.expected.probabilities[i]!)),
    ).toSatisfy((d: number[]) => d.every((x) => x <= 1e-6));
  });
});

describe("tabular drift: per-feature PSI against the feature schema", () => {
  const send = async (shift: number) => {
    const rng = createRng(shift === 0 ? 11 : 12);
    for (let r = 0; r < 20; r++) {
      const batch = Array.from({ length: 50 }, () => {
        const row = { ...rows[Math.floor(rng() * rows.length)]! };
        row.petal_length! += shift;
        return row;
      });
      const res = await postJson(`${server.url}/predict`, { features: batch });
      expect(res.status).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 300)); // chunks flush every 50 ms
  };
  const drift = async () =>
    (await request(`${server.url}/drift`)).json() as {
      full: boolean;
      drift: boolean;
      moved: string[];
      features: { name: string; psi: number; over: boolean }[];
    };

  it("unshifted traffic (one full window): no alarm", async () => {
    await send(0);
    const report = await drift();
    expect(report.full).toBe(true);
    expect(report.moved).toEqual([]);
    expect(report.drift).toBe(false);
    expect(report.features.map((f) => f.name)).toEqual(FEATURES);
    for (const f of report.features) expect(f.psi).toBeLessThan(0.1);
  });

  it("petal_length shifted by +1.5 cm: named in /drift and the gauges within one window", async () => {
    await send(1.5);
    const report = await drift();
    expect(report.moved).toEqual(["petal_length"]);
    expect(report.drift).toBe(true);
    const metrics = (await request(`${server.url}/metrics`)).text;
    const line = metrics
      .split("\n")
      .find((l) => l.startsWith('modelship_drift_feature_psi{feature="petal_length"}'));
    expect(Number(line?.split(" ")[1])).toBeGreaterThan(0.2);
    expect(metrics).toMatch(/^modelship_drift_feature_psi_threshold 0\.2$/m);
  });
});

describe("text BYO model (airline, skl2onnx TF-IDF) answers /predict like a trained one", () => {
  let text: RunningServer;
  afterAll(async () => {
    await text?.stop();
  });
  it("single and batch, golden labels", async () => {
    const dir = await byoBundle("airline-3class-tfidf-lr");
    const card = JSON.parse(await readFile(join(dir, "model.json"), "utf8")) as ModelCard;
    text = await startServer(dir, { MODELSHIP_DRIFT: "false" });
    const g = card.golden[0]!;
    const one = await postJson(`${text.url}/predict`, { text: g.input });
    expect(one.status, one.text).toBe(200);
    expect(one.json()).toMatchObject({
      text: g.input,
      sentiment: g.expected.label,
      model_version: card.version,
    });
    const batch = await postJson(`${text.url}/predict`, { texts: card.golden.map((x) => x.input) });
    expect(
      (batch.json() as { predictions: { sentiment: string }[] }).predictions.map((p) => p.sentiment),
    ).toEqual(card.golden.map((x) => x.expected.label));
    // A text equal to one of skl2onnx's stop words made the exported graph drop its row from a batch;
    // the bundle (origin.corrections) answers every row.
    const stop = await postJson(`${text.url}/predict`, {
      texts: ["@united thanks", "Covered", "worst airline ever"],
    });
    expect(stop.status, stop.text).toBe(200);
    expect((stop.json() as { predictions: unknown[] }).predictions).toHaveLength(3);
  });
});
