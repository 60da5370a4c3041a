/**
 * `npm run bench:model` — what one text costs the text graph, and whether that cost follows the
 * vocabulary. Trains on the real data (binary airline model, stratified 80/20, seed 42):
 *   - the default model (20,000 n-grams),
 *   - every uni+bigram of the data (minDf 1: ~86,000 n-grams; same n-gram range, so per text the
 *     same n-gram positions — the pure vocabulary effect),
 *   - 100,000 uni+bi+trigrams (minDf 1; its texts also have ~45 % more n-gram positions),
 *   - 20,000 uni+bi+trigrams (the same positions per text as the 100,000-term one: its vocabulary
 *     ratio is the pure vocabulary effect at 100,000 terms),
 * exports each as the sparse graph (what `modelship train` writes) and the dense graph (earlier
 * bundles), and times `ClassifierSession.predict` in this process (1 intra-op thread, as the server):
 * CPU µs per call for 1 text and per text in batches of 32, median of interleaved rounds. An
 * Identity graph on the same string input gives onnxruntime-node's own per-call floor.
 * Flags: --seconds <s> per round and session (1) --rounds <n> (3) --json
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { loadTextDataset } from "../src/data/dataset.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { textTable } from "../src/util/progress.js";
import { dataPath } from "../test/support/data.js";
import { stratifiedSplit, type TextTrainerParams, trainTextClassifier } from "../training/index.js";
import { GraphBuilder } from "../training/onnx/builder.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "1" },
    rounds: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const log = (s: string) => {
  if (!args.json) process.stderr.write(`${s}\n`);
};

const load0 = loadavg();
const ds = loadTextDataset({
  path: dataPath(),
  textColumn: "text",
  labelColumn: "airline_sentiment",
  labels: ["negative", "positive"],
});
const split = stratifiedSplit(
  ds.examples.map((e) => e.label),
  0.2,
  42,
);
const train = split.train.map((i) => ds.examples[i]!);
const texts = split.test.slice(0, 500).map((i) => ds.examples[i]!.text);

const variants: { name: string; params: Partial<TextTrainerParams> }[] = [
  { name: "default (1-2 grams, minDf 2)", params: {} },
  { name: "all 1-2 grams (minDf 1)", params: { minDf: 1, maxFeatures: 1_000_000 } },
  { name: "1-3 grams (minDf 1)", params: { minDf: 1, maxFeatures: 100_000, ngramRange: [1, 3] } },
  { name: "1-3 grams, 20,000 terms", params: { minDf: 1, maxFeatures: 20_000, ngramRange: [1, 3] } },
];

interface Subject {
  name: string;
  graph: "sparse" | "dense" | "identity";
  vocabulary: number;
  run: (batch: string[]) => Promise<unknown>;
  release: () => Promise<void>;
  one: number[];
  batch: number[];
  wallOne: number[];
}
const subjects: Subject[] = [];
{
  const id = new GraphBuilder("identity");
  id.input("text", { tensor: "string", shape: ["N"] });
  id.output("probabilities", { tensor: "string", shape: ["N"] });
  id.node("Identity", ["text"], ["probabilities"]);
  // ClassifierSession wants probabilities; the floor is the bare binding call on the same input.
  const session = await ort.InferenceSession.create(id.toModel({ opsets: { "": 17 } }), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  subjects.push({
    name: "Identity (binding floor)",
    graph: "identity",
    vocabulary: 0,
    run: (batch) => session.run({ text: new ort.Tensor("string", batch, [batch.length]) }),
    release: () => session.release(),
    one: [],
    batch: [],
    wallOne: [],
  });
}
for (const v of variants) {
  log(`training ${v.name}...`);
  const model = trainTextClassifier(train, v.params);
  for (const graph of ["sparse", "dense"] as const) {
    const session = await ClassifierSession.open(model.toOnnx({ graph }), {
      intraOpThreads: 1,
      labels: model.labels,
    });
    subjects.push({
      name: v.name,
      graph,
      vocabulary: model.vocabularySize,
      run: (batch) => session.predict(batch),
      release: () => session.release(),
      one: [],
      batch: [],
      wallOne: [],
    });
  }
}

async function measure(s: Subject, batch: number): Promise<{ cpu: number; wall: number }> {
  const inputs = (i: number) => Array.from({ length: batch }, (_, k) => texts[(i + k) % texts.length]!);
  const run = (i: number) => s.run(inputs(i));
  for (let i = 0; i < 100; i++) await run(i);
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() < end) await run(n++);
  const cpu = process.cpuUsage(cpu0);
  return { cpu: (cpu.user + cpu.system) / n / batch, wall: ((performance.now() - t0) * 1000) / n / batch };
}

for (let r = 0; r < rounds; r++) {
  log(`round ${r + 1}/${rounds}...`);
  for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
    const one = await measure(s, 1);
    s.one.push(one.cpu);
    s.wallOne.push(one.wall);
    if (s.graph !== "identity") s.batch.push((await measure(s, 32)).cpu);
  }
}
for (const s of subjects) await s.release();

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length === 0 ? Number.NaN : a[Math.floor(a.length / 2)]!;
};
const rows = subjects.map((s) => ({
  model: s.name,
  graph: s.graph,
  vocabulary: s.vocabulary,
  oneTextCpuUs: median(s.one),
  oneTextWallUs: median(s.wallOne),
  batch32CpuUsPerText: median(s.batch),
}));
const find = (model: string, graph: string) => rows.find((r) => r.model === model && r.graph === graph)!;
const [base, all, tri, tri20] = variants.map((v) => v.name) as [string, string, string, string];
const ratio = (a: number, b: number) => a / b;
const goals = [
  {
    figure: "session.run 1 text, default model (sparse), CPU µs",
    measured: `${find(base, "sparse").oneTextCpuUs.toFixed(1)} µs (dense graph: ${find(base, "dense").oneTextCpuUs.toFixed(1)} µs, ratio ${ratio(find(base, "sparse").oneTextCpuUs, find(base, "dense").oneTextCpuUs).toFixed(2)})`,
    goal: "≤ 25 µs",
    met: find(base, "sparse").oneTextCpuUs <= 25,
  },
  {
    figure: `1 text: ${find(all, "sparse").vocabulary.toLocaleString("en")}-term ÷ ${find(base, "sparse").vocabulary.toLocaleString("en")}-term vocabulary (sparse)`,
    measured: `${ratio(find(all, "sparse").oneTextCpuUs, find(base, "sparse").oneTextCpuUs).toFixed(2)}× (dense: ${ratio(find(all, "dense").oneTextCpuUs, find(base, "dense").oneTextCpuUs).toFixed(2)}×)`,
    goal: "≤ 1.2×",
    met: ratio(find(all, "sparse").oneTextCpuUs, find(base, "sparse").oneTextCpuUs) <= 1.2,
  },
  {
    figure: `1 text, 1-3 grams: ${find(tri, "sparse").vocabulary.toLocaleString("en")}-term ÷ ${find(tri20, "sparse").vocabulary.toLocaleString("en")}-term vocabulary (sparse)`,
    measured: `${ratio(find(tri, "sparse").oneTextCpuUs, find(tri20, "sparse").oneTextCpuUs).toFixed(2)}× (dense: ${ratio(find(tri, "dense").oneTextCpuUs, find(tri20, "dense").oneTextCpuUs).toFixed(2)}×)`,
    goal: "≤ 1.2×",
    met: ratio(find(tri, "sparse").oneTextCpuUs, find(tri20, "sparse").oneTextCpuUs) <= 1.2,
  },
  {
    figure: `1 text: ${find(tri, "sparse").vocabulary.toLocaleString("en")}-term (1-3 grams) ÷ ${find(base, "sparse").vocabulary.toLocaleString("en")}-term (1-2 grams; more positions per text, sparse)`,
    measured: `${ratio(find(tri, "sparse").oneTextCpuUs, find(base, "sparse").oneTextCpuUs).toFixed(2)}× (dense: ${ratio(find(tri, "dense").oneTextCpuUs, find(base, "dense").oneTextCpuUs).toFixed(2)}×)`,
    goal: "≤ 1.2×",
    met: ratio(find(tri, "sparse").oneTextCpuUs, find(base, "sparse").oneTextCpuUs) <= 1.2,
  },
];

if (args.json) {
  process.stdout.write(
    `${JSON.stringify({ loadavg: load0, loadavgEnd: loadavg(), seconds, rounds, rows, goals }, null, 2)}\n`,
  );
} else {
  const f = (n: number) => (Number.isNaN(n) ? "" : n.toFixed(1));
  process.stdout.write(
    `${textTable(
      ["model", "graph", "vocabulary", "1 text CPU µs", "1 text wall µs", "batch 32: CPU µs/text"],
      rows.map((r) => [
        r.model,
        r.graph,
        r.vocabulary || "",
        f(r.oneTextCpuUs),
        f(r.oneTextWallUs),
        f(r.batch32CpuUsPerText),
      ]),
    )}\n`,
  );
  process.stdout.write(
    `medians of ${rounds} interleaved rounds of ${seconds} s; load average at start ${load0.map((l) => l.toFixed(1)).join(" ")}, at end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}\n\n`,
  );
  process.stdout.write(
    `${textTable(
      ["figure", "measured", "goal", "met"],
      goals.map((g) => [g.figure, g.measured, g.goal, g.met ? "yes" : "NO"]),
    )}\n`,
  );
}
