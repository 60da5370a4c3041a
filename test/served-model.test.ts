import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServedModel } from "../serving/model.js";
import { readBundle } from "../src/bundle/read.js";
import { loadCsv } from "../src/data/dataset.js";
import { trainedBundle } from "./support/bundle.js";
import { byoBundle } from "./support/byo-bundles.js";
import { dataPath } from "./support/data.js";

const exec = promisify(execFile);

// The worker's model object with real onnxruntime-node: requests issued in the same event-loop turn
// share one run, and each gets exactly its own rows back.
let text: ServedModel;
let alone: ServedModel;
let iris: ServedModel;
let tweets: string[];

beforeAll(async () => {
  const bundle = await readBundle(await trainedBundle());
  text = await ServedModel.open(bundle, { coalesceRows: 64 });
  alone = await ServedModel.open(bundle, { coalesceRows: 1 });
  iris = await ServedModel.open(await readBundle(await byoBundle("iris-logreg-zipmap")), {
    coalesceRows: 64,
  });
  const table = loadCsv(dataPath(), { columns: ["text"] });
  tweets = table.rows.slice(0, 60).map((r) => r.text!);
}, 180_000);

afterAll(async () => {
  await Promise.all([text?.close(), alone?.close(), iris?.close()]);
});

describe("coalescing requests into one model run", () => {
  it("requests of one turn share a run; every request gets its own rows, equal to a run alone", async () => {
    const requests = [tweets.slice(0, 1), tweets.slice(1, 4), [""], tweets.slice(4, 5), tweets.slice(5, 35)];
    const before = text.runStats;
    const shared = await Promise.all(requests.map((r) => text.predict(r)));
    const after = text.runStats;
    expect(after.runs - before.runs).toBe(1);
    expect(after.coalescedRequests - before.coalescedRequests).toBe(requests.length);
    for (const [i, r] of requests.entries()) {
      const own = await alone.predict(r);
      expect(shared[i]).toHaveLength(r.length);
      shared[i]!.forEach((p, j) => {
        expect(p.label).toBe(own[j]!.label);
        for (let c = 0; c < p.probabilities.length; c++)
          expect(Math.abs(p.probabilities[c]! - own[j]!.probabilities[c]!)).toBeLessThan(1e-5);
      });
    }
  });

  it("a turn with more rows than the cap is split into runs of at most the cap", async () => {
    const requests = Array.from({ length: 10 }, (_, i) => tweets.slice(i * 5, i * 5 + 20)); // 200 rows
    const before = text.runStats;
    const shared = await Promise.all(requests.map((r) => text.predict(r)));
    expect(text.runStats.runs - before.runs).toBe(4); // 3 × 60 rows + 20
    shared.forEach((rows, i) => {
      expect(rows.map((p) => p.probabilities.length)).toEqual(requests[i]!.map(() => 2));
    });
    const own = await alone.predict(requests[9]!);
    expect(shared[9]!.map((p) => p.label)).toEqual(own.map((p) => p.label));
  });

  it("a lone request runs by itself, and requests at or over the cap run alone", async () => {
    const before = text.runStats;
    await text.predict(tweets.slice(0, 1));
    await Promise.all([text.predict(tweets.slice(0, 64)), text.predict(tweets.slice(0, 64))]);
    expect(text.runStats.runs - before.runs).toBe(3);
    expect(text.runStats.coalescedRequests).toBe(before.coalescedRequests);
  });

  it("one request that breaks the shared run fails alone; the others get their answers", async () => {
    const good = [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
    ];
    const before = iris.runStats;
    const outcomes = await Promise.allSettled([
      iris.predict([good[0]!]),
      iris.predict([[1, 2, 3]]), // 3 features for a 4-feature model: onnxruntime refuses the batch
      iris.predict([good[1]!]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/feature|column|shape|dimension/i);
    // one failed shared run, then each request alone
    expect(iris.runStats.runs - before.runs).toBe(4);
    const alone0 = await iris.predict([good[0]!]);
    expect((outcomes[0] as PromiseFulfilledResult<{ label: string }[]>).value[0]!.label).toBe(
      alone0[0]!.label,
    );
  });

  it("a graph that only takes one row at a time: shared runs fail, each runs alone, coalescing turns itself off", async () => {
    // Declared [N, 4] but reshaped to [1, 4] inside, as some hand-made exports do.
    const dir = await mkdtemp(join(tmpdir(), "ms-batch1-"));
    const onnx = join(dir, "batch1.onnx");
    await exec("/usr/bin/python3", [
      "-c",
      `
import sys, onnx
from onnx import helper as h, TensorProto as T
g = h.make_graph(
  [h.make_node("Reshape", ["float_input", "shape"], ["row"]),
   h.make_node("MatMul", ["row", "w"], ["logits"]),
   h.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
  "batch1",
  [h.make_tensor_value_info("float_input", T.FLOAT, ["N", 4])],
  [h.make_tensor_value_info("probabilities", T.FLOAT, ["N", 3])],
  [h.make_tensor("shape", T.INT64, [2], [1, 4]),
   h.make_tensor("w", T.FLOAT, [4, 3], [1, 0, -1, 0, 1, 0, -1, 0, 1, 0.5, 0.5, 0.5])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), sys.argv[1])
`,
      onnx,
    ]);
    const irisBundle = await readBundle(await byoBundle("iris-logreg-zipmap"));
    const warnings: string[] = [];
    const one = await ServedModel.open(
      { ...irisBundle, modelPath: onnx },
      { coalesceRows: 64, warn: (m) => warnings.push(m) },
    );
    try {
      const rows = [
        [5.1, 3.5, 1.4, 0.2],
        [6.7, 3.0, 5.2, 2.3],
        [5.9, 3.0, 4.2, 1.5],
      ];
      const first = await Promise.all(rows.map((r) => one.predict([r])));
      expect(first.every((p) => p.length === 1)).toBe(true);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/each request now runs alone/);
      expect(one.coalesceRows).toBe(1);
      const before = one.runStats.runs;
      const again = await Promise.all(rows.map((r) => one.predict([r])));
      expect(one.runStats.runs - before).toBe(3); // no failed shared run any more
      expect(again.map((p) => p[0]!.label)).toEqual(first.map((p) => p[0]!.label));
    } finally {
      await one.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("is off for coalesceRows 1: every request is its own run", async () => {
    const before = alone.runStats;
    await Promise.all(tweets.slice(0, 5).map((t) => alone.predict([t])));
    expect(alone.runStats.runs - before.runs).toBe(5);
    expect(alone.runStats.coalescedRequests).toBe(0);
  });
});
