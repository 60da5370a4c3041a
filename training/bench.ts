/**
 * `npm run bench:train` — trains the binary airline model with default params and prints the time for
 * train + ONNX export (goal: ≤ 30 s on the 2-core host), the ratio to a floor measured in the same run
 * (one tokenize + n-gram pass over the training texts), CV time, accuracy / F1(positive) and ONNX parity.
 * `BENCH_SEEDS=0-7` repeats the split for several seeds. Data: $MODELSHIP_DATA or ../shared/data.
 */
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { loadTextDataset } from "../src/data/dataset.js";
import { accuracy, argmax, confusionMatrix, perClassScores } from "../src/metrics/index.js";
import { crossValidate, stratifiedSplit, trainTextClassifier } from "./index.js";
import { lowerCase, ngrams, tokenize } from "./text.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const path = process.env.MODELSHIP_DATA ?? resolve(root, "../shared/data/airline_sentiment.csv");
if (!existsSync(path)) {
  console.error(`dataset not found at ${path}; set MODELSHIP_DATA`);
  process.exit(3);
}

function seeds(spec: string | undefined): number[] {
  if (!spec) return [42];
  const range = /^(\d+)-(\d+)$/.exec(spec);
  if (range)
    return Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i);
  return spec.split(",").map(Number);
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
console.log(`load average before: ${load()} (2 cores shared)`);
const ds = loadTextDataset({
  path,
  textColumn: "text",
  labelColumn: "airline_sentiment",
  labels: ["negative", "positive"],
});

for (const seed of seeds(process.env.BENCH_SEEDS)) {
  const split = stratifiedSplit(
    ds.examples.map((e) => e.label),
    0.2,
    seed,
  );
  const train = split.train.map((i) => ds.examples[i]!);
  const test = split.test.map((i) => ds.examples[i]!);
  const texts = test.map((e) => e.text);

  let t = performance.now();
  const pattern = /[a-z0-9']+/g;
  let grams = 0;
  for (const e of train) grams += ngrams(tokenize(lowerCase(e.text), pattern), 1, 2).length;
  const floorMs = performance.now() - t;

  t = performance.now();
  const model = trainTextClassifier(train);
  const trainMs = performance.now() - t;
  const onnx = model.toOnnx();
  const totalMs = performance.now() - t;

  const probs = model.predictProba(texts);
  const yTrue = test.map((e) => model.labels.indexOf(e.label));
  const yPred = probs.map((p) => argmax(p));
  const f1 = perClassScores(confusionMatrix(yTrue, yPred, 2))[model.labels.indexOf("positive")]!.f1;

  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1 });
  let parity = 0;
  for (let i = 0; i < texts.length; i += 256) {
    const batch = texts.slice(i, i + 256);
    const out = await session.run({ text: new ort.Tensor("string", batch, [batch.length]) });
    const flat = out.probabilities!.data as Float32Array;
    batch.forEach((_, r) => {
      for (let k = 0; k < 2; k++) parity = Math.max(parity, Math.abs(flat[r * 2 + k]! - probs[i + r]![k]!));
    });
  }
  await session.release();

  let cvLine = "";
  if (seed === 42 || process.env.BENCH_CV) {
    t = performance.now();
    const cv = crossValidate(train, {}, 5, seed);
    cvLine =
      ` · 5-fold CV accuracy ${cv.accuracy.mean.toFixed(4)} ± ${cv.accuracy.std.toFixed(4)}, ` +
      `macro-F1 ${cv.macroF1.mean.toFixed(4)} ± ${cv.macroF1.std.toFixed(4)} (${((performance.now() - t) / 1000).toFixed(1)} s)`;
  }
  console.log(
    `seed ${seed}: accuracy ${accuracy(yTrue, yPred).toFixed(4)} · F1(positive) ${f1.toFixed(4)} · ` +
      `train ${(trainMs / 1000).toFixed(2)} s + export ${((totalMs - trainMs) / 1000).toFixed(2)} s = ` +
      `${(totalMs / 1000).toFixed(2)} s (${(totalMs / floorMs).toFixed(1)}× the floor: ${floorMs.toFixed(0)} ms to tokenize into ${grams} n-grams) · ` +
      `${model.optimizer.iterations} L-BFGS iterations · ONNX ${(onnx.byteLength / 1024).toFixed(0)} KiB · ` +
      `parity max |Δp| ${parity.toExponential(2)}${cvLine}`,
  );
}
console.log(`load average after: ${load()}`);
