import { resolve } from "node:path";
import {
  crossValidate,
  stratifiedSplit,
  TRAINER_NAME,
  textTrainerParamsSchema,
  trainTextClassifier,
} from "../../training/index.js";
import { MIN_GOLDEN, pickGolden, referenceDistribution } from "../bundle/evidence.js";
import { prepareOutDir, StagedBundle } from "../bundle/write.js";
import { parseWith } from "../config/load.js";
import type { TrainSettings } from "../config/train.js";
import type { ModelCard } from "../contracts/card.js";
import { loadTextDataset } from "../data/dataset.js";
import { evaluateClassifier } from "../metrics/classification.js";
import { ClassifierSession } from "../onnx/session.js";
import { ExitCode, UserError } from "../util/errors.js";
import type { Reporter } from "../util/progress.js";

/** Largest |ONNX − trainer| probability difference tolerated on any test row. */
export const PARITY_TOLERANCE = 1e-4;

export interface TrainResult {
  dir: string;
  card: ModelCard;
  /** Max |ONNX − trainer| probability over the test split. */
  parity: number;
  trainMs: number;
}

/**
 * The train-and-validate pipeline: load → split → CV → train → export one ONNX graph → parity check
 * → runtime figures → bundle. Metrics, golden examples and the reference distribution all come from
 * onnxruntime-node running the exported bytes, i.e. from exactly what will be served.
 */
export async function trainBundle(
  settings: TrainSettings,
  reporter: Reporter,
  where = "train.params",
): Promise<TrainResult> {
  const params = parseWith(textTrainerParamsSchema, settings.params, where, ["train", "params"]);
  // before minutes of training, not after
  await prepareOutDir(resolve(settings.out));

  const ds = await reporter.step(
    "load data",
    async () =>
      loadTextDataset({
        path: settings.data,
        textColumn: settings.textColumn,
        labelColumn: settings.labelColumn,
        labels: settings.labels,
        labelMap: settings.labelMap,
        onEmpty: settings.onEmpty,
      }),
    (d) =>
      `${d.rows.used} rows (${d.rows.dropped} dropped of ${d.rows.total}), ${Object.entries(d.classCounts)
        .map(([l, n]) => `${l} ${n}`)
        .join(" · ")}`,
  );
  const examples = ds.examples;

  const split = await reporter.step(
    "split",
    async () =>
      stratifiedSplit(
        examples.map((e) => e.label),
        params.testSize,
        params.seed,
      ),
    (s) =>
      `stratified ${Math.round((1 - params.testSize) * 100)}/${Math.round(params.testSize * 100)}: ${s.train.length} train, ${s.test.length} test (seed ${params.seed})`,
  );
  if (split.test.length < MIN_GOLDEN) {
    throw new UserError(
      `the test split has ${split.test.length} rows; a bundle needs at least ${MIN_GOLDEN} (its golden examples come from it)`,
      { hint: "use more data or a larger params.testSize" },
    );
  }
  const train = split.train.map((i) => examples[i]!);
  const test = split.test.map((i) => examples[i]!);
  const testTexts = test.map((e) => e.text);

  const cv = await reporter.step(
    "cross-validate",
    async () => crossValidate(train, params, params.cvFolds, params.seed),
    (r) => `${r.folds}-fold accuracy ${r.accuracy.mean.toFixed(3)} ± ${r.accuracy.std.toFixed(3)}`,
  );

  const started = performance.now();
  const model = await reporter.step(
    "train",
    async (update) =>
      trainTextClassifier(train, params, (p) => {
        if (p.phase === "optimize" && p.iteration !== undefined && p.iteration % 10 === 0) {
          update(`iteration ${p.iteration}${p.loss !== undefined ? `, loss ${p.loss.toFixed(4)}` : ""}`);
        }
      }),
    (m) =>
      `${m.vocabularySize} n-grams, ${m.optimizer.iterations} iterations${m.optimizer.converged ? "" : " (not converged)"}`,
  );
  const onnx = await reporter.step(
    "export ONNX",
    async () => model.toOnnx({ name: settings.name }),
    (b) => `${(b.byteLength / 1024).toFixed(0)} KiB, raw strings in`,
  );
  const trainMs = performance.now() - started;
  const io = model.ioSignature();

  const { probabilities, parity } = await reporter.step(
    "parity check",
    async () => {
      const session = await ClassifierSession.open(onnx, {
        labels: io.labels,
        probabilitiesOutput: io.probabilitiesOutput,
      });
      try {
        const ort = (await session.predict(testTexts)).probabilities;
        const mine = model.predictProba(testTexts);
        let worst = 0;
        let worstRow = 0;
        ort.forEach((row, i) => {
          row.forEach((p, c) => {
            const d = Math.abs(p - mine[i]![c]!);
            if (d > worst) {
              worst = d;
              worstRow = i;
            }
          });
        });
        if (!(worst <= PARITY_TOLERANCE)) {
          throw new UserError(
            `ONNX model disagrees with the trainer by ${worst.toExponential(2)} (> ${PARITY_TOLERANCE}) on test row ${worstRow}: ${JSON.stringify(testTexts[worstRow]!.slice(0, 80))}`,
            { exitCode: ExitCode.failed, hint: "no bundle written; this is a bug in the exporter" },
          );
        }
        return { probabilities: ort, parity: worst };
      } finally {
        await session.release();
      }
    },
    (r) => `max |Δp| ${r.parity.toExponential(1)} over ${testTexts.length} test rows (≤ ${PARITY_TOLERANCE})`,
  );

  const index = new Map(io.labels.map((l, i) => [l, i]));
  const yTrue = test.map((e) => index.get(e.label)!);
  const metrics = evaluateClassifier({ labels: io.labels, yTrue, probabilities, cv });

  const staged = await StagedBundle.create({ name: settings.name, outDir: settings.out, onnx });
  try {
    const runtime = await reporter.step(
      "measure runtime",
      async () => staged.measureRuntime(testTexts, { labels: io.labels }),
      (r) =>
        `load ${r.loadMs.toFixed(0)} ms · single row p50 ${r.singleRowP50Ms.toFixed(2)} ms, p95 ${r.singleRowP95Ms.toFixed(2)} ms · ${r.batch64RowsPerSec} rows/s at batch 64`,
    );
    const written = await reporter.step(
      "write bundle",
      async () =>
        staged.commit(
          {
            io,
            dataset: {
              path: settings.data,
              sha256: ds.sha256,
              textColumn: ds.textColumn,
              labelColumn: ds.labelColumn,
              rows: { ...ds.rows, train: train.length, test: test.length },
              classCounts: ds.classCounts,
            },
            training: {
              trainer: TRAINER_NAME,
              seed: params.seed,
              durationMs: Math.round(trainMs),
              params: {
                ...params,
                ...(settings.labels ? { labelSubset: settings.labels } : {}),
                ...(settings.labelMap ? { labelMap: settings.labelMap } : {}),
              },
            },
            metrics,
            golden: pickGolden(testTexts, yTrue, probabilities, io.labels),
            reference: referenceDistribution(testTexts, probabilities, io.labels),
          },
          runtime,
        ),
      (w) => w.dir,
    );
    return { ...written, parity, trainMs };
  } finally {
    await staged.discard();
  }
}
