import { readFile } from "node:fs/promises";
import { MIN_GOLDEN, pickGolden, referenceDistribution } from "../bundle/evidence.js";
import { StagedBundle } from "../bundle/write.js";
import type { PackageSettings } from "../config/package.js";
import type { IoSignature, ModelCard, TensorSpec } from "../contracts/card.js";
import { loadCsv, loadTabularDataset, loadTextDataset } from "../data/dataset.js";
import { argmax, evaluateClassifier } from "../metrics/classification.js";
import type { ModelInput } from "../onnx/runtime.js";
import { assertReadableFile, ClassifierSession, type OpenOptions } from "../onnx/session.js";
import { ExitCode, UserError } from "../util/errors.js";
import { sha256 } from "../util/fs.js";
import type { Reporter } from "../util/progress.js";
import { featureSchema, firstNonProbabilityRow, softmaxRows } from "./features.js";
import {
  alignWithScikitLearn,
  exposeOutput,
  type GraphInfo,
  inspectGraph,
  parseOnnx,
  rewriteForServing,
} from "./graph.js";

/** Largest |bundle − original| probability tolerated on any evaluation row. */
export const PACKAGE_PARITY_TOLERANCE = 1e-4;
const BATCH = 512;

export interface PackageResult {
  dir: string;
  card: ModelCard;
  parity: number;
  transforms: string[];
  corrections: Corrections | undefined;
}

/** Output-changing corrections (src/package/graph.ts alignWithScikitLearn) and what they changed. */
export type Corrections = NonNullable<NonNullable<ModelCard["origin"]>["corrections"]>;

interface EvalData {
  kind: "text" | "features";
  inputs: ModelInput[];
  yLabels: string[];
  sha256: string;
  labelColumn: string;
  textColumn?: string;
  featureColumns?: string[];
  rows: { total: number; used: number; dropped: number };
  classCounts: Record<string, number>;
  dataLabels: string[];
}

/**
 * `modelship package`: an ONNX classifier trained anywhere + a labelled evaluation CSV → a bundle with
 * the same contract as a trained one. The served graph is the user's graph with the least change that
 * lets onnxruntime-node serve it (src/package/graph.ts), checked against the original on every
 * evaluation row before anything is written. Every bad input is one UserError; nothing is written
 * unless every check passed.
 */
export async function packageBundle(s: PackageSettings, reporter: Reporter): Promise<PackageResult> {
  await assertReadableFile(s.model, "ONNX model");
  const original = new Uint8Array(await readFile(s.model));
  const model = parseOnnx(original, s.model);
  const info = inspectGraph(model);
  const producer = `${model.producer_name || "unknown"} ${model.producer_version ?? ""}`.trim();

  // The graph without ZipMap and with a portable locale: what onnxruntime-node can run and read.
  const classCountGuess = info.classes?.labels.length ?? s.labels?.length ?? 0;
  const probe = await reporter.step(
    "inspect model",
    async () => {
      const base = rewriteForServing(original, { classCount: classCountGuess || 2 });
      return openSession(base.bytes, s.model, {
        ...(s.inputName ? { inputName: s.inputName } : {}),
        ...(base.probabilitiesOutput ? { probabilitiesOutput: base.probabilitiesOutput } : {}),
      });
    },
    (p) =>
      `${producer}: input '${p.input.name}' ${p.input.dtype} [${p.input.shape.map(dim).join(", ")}], scores '${p.probabilitiesOutput}'${info.zipMap ? ` (behind ZipMap '${info.zipMap.output}')` : ""}`,
  );
  try {
    const batch = probe.input.shape[0];
    if (probe.input.shape.length >= 2 && typeof batch === "number" && batch > 0) {
      throw new UserError(
        `model input '${probe.input.name}' has a fixed batch size of ${batch} ([${probe.input.shape.join(", ")}]); a served model takes any number of rows`,
        {
          hint: "re-export with a dynamic first dimension: torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}), skl2onnx FloatTensorType([None, F])",
        },
      );
    }
    const classCount = probe.classCount;
    if (classCount !== undefined && classCount < 2) {
      throw new UserError(
        `model ${s.model} output '${probe.probabilitiesOutput}' has ${classCount} column; modelship ships classifiers (one score per class, at least two)`,
        { hint: "a regressor or a single-logit binary model cannot be packaged; export class scores [N, C]" },
      );
    }
    const data = await reporter.step(
      "load evaluation data",
      async () => loadEvalData(s, probe),
      (d) =>
        `${d.rows.used} rows, ${d.kind === "text" ? `text column '${d.textColumn}'` : `${d.featureColumns!.length} features`}, label column '${d.labelColumn}'`,
    );
    const labels = resolveClasses(s, info, data);
    if (classCount !== undefined && labels.length !== classCount) {
      throw new UserError(
        `model output '${probe.probabilitiesOutput}' has ${classCount} columns but there are ${labels.length} classes (${labels.join(", ")})`,
        { hint: "pass --labels with the model's classes in probability-column order" },
      );
    }
    if (data.inputs.length < MIN_GOLDEN) {
      throw new UserError(
        `evaluation data ${s.data} has ${data.inputs.length} rows; a bundle needs at least ${MIN_GOLDEN} (its golden examples come from them)`,
      );
    }

    // Probabilities or logits?
    const raw = await runAll(probe, data.inputs);
    const nonProb = firstNonProbabilityRow(raw.probabilities);
    let scores: "probabilities" | "logits";
    if (s.scores === "logits") scores = "logits";
    else if (nonProb === undefined) scores = "probabilities";
    else if (s.scores === "probabilities") {
      throw new UserError(
        `output '${probe.probabilitiesOutput}' was declared probabilities but evaluation row ${nonProb.row + 1} sums to ${nonProb.sum.toFixed(4)}`,
        { hint: "if the model outputs logits, pass --scores logits (a Softmax is added to the bundle)" },
      );
    } else {
      throw new UserError(
        `output '${probe.probabilitiesOutput}' does not hold probabilities (evaluation row ${nonProb.row + 1} sums to ${nonProb.sum.toFixed(4)}): are these logits?`,
        {
          hint: "pass --scores logits (a Softmax is added to the bundle) or --scores probabilities (package.scores in modelship.yaml)",
        },
      );
    }

    const served = rewriteForServing(original, {
      classCount: labels.length,
      scoresOutput: probe.probabilitiesOutput,
      addSoftmax: scores === "logits",
    });
    const portable = await openSession(served.bytes, s.model, {
      ...(s.inputName ? { inputName: s.inputName } : {}),
      probabilitiesOutput: served.probabilitiesOutput ?? probe.probabilitiesOutput,
      labels,
    });
    let session = portable;
    try {
      const exported = await runAll(portable, data.inputs);
      const parity = await reporter.step(
        "parity with the original",
        async () => checkParity(s, original, info, probe, scores, exported, labels.length, data.inputs),
        (p) =>
          `max |Δp| ${p.toExponential(1)} over ${data.inputs.length} rows (≤ ${PACKAGE_PARITY_TOLERANCE})${served.transforms.length ? `; ${served.transforms.join("; ")}` : "; graph unchanged"}`,
      );
      const index = new Map(labels.map((l, i) => [l, i]));
      const yTrue = data.yLabels.map((l) => index.get(l)!);

      // skl2onnx text graphs tokenize unlike scikit-learn: correct them, and count what that changes.
      const aligned = alignWithScikitLearn(served.bytes);
      let out = exported;
      let corrections: Corrections | undefined;
      if (aligned.transforms.length > 0) {
        session = await openSession(aligned.bytes, s.model, {
          ...(s.inputName ? { inputName: s.inputName } : {}),
          probabilitiesOutput: portable.probabilitiesOutput,
          labels,
        });
        const result = await reporter.step(
          "agree with scikit-learn",
          async () => {
            const fixed = await runAll(session, data.inputs);
            return { fixed, corrections: compareCorrected(aligned.transforms, exported, fixed, yTrue) };
          },
          ({ corrections: c }) =>
            `${aligned.transforms.map((t) => t.split(" — ")[0]).join("; ")} · ${c.labelsChanged} of ${c.rows} evaluation rows change label vs the exported graph (accuracy ${c.accuracyBefore.toFixed(4)} → ${c.accuracyAfter.toFixed(4)}), ${c.rowsChanged} change probabilities`,
        );
        out = result.fixed;
        corrections = result.corrections;
      }
      const probabilities = out.probabilities;
      checkLabelOutput(out.graphLabels, probabilities, labels);

      const metrics = evaluateClassifier({ labels, yTrue, probabilities });

      const ref = await reporter.step(
        "reference distributions",
        async () => reference(s, data, session, probabilities, labels),
        (r) =>
          `${r.rows} rows from ${s.reference ?? s.data}${r.features ? `, ${r.features.length} features` : ""}`,
      );
      const io = ioSignature(session, data, labels, info);
      const staged = await StagedBundle.create({ name: s.name, outDir: s.out, onnx: aligned.bytes });
      try {
        const runtime = await reporter.step(
          "measure runtime",
          async () =>
            staged.measureRuntime(data.inputs.slice(0, 256), {
              labels,
              ...(s.inputName ? { inputName: s.inputName } : {}),
              probabilitiesOutput: io.probabilitiesOutput,
            }),
          (r) =>
            `load ${r.loadMs.toFixed(0)} ms · single row p50 ${r.singleRowP50Ms.toFixed(2)} ms, p95 ${r.singleRowP95Ms.toFixed(2)} ms`,
        );
        const written = await reporter.step(
          "write bundle",
          async () =>
            staged.commit(
              {
                io,
                dataset: {
                  path: s.data,
                  sha256: data.sha256,
                  ...(data.textColumn ? { textColumn: data.textColumn } : {}),
                  labelColumn: data.labelColumn,
                  rows: { ...data.rows, train: 0, test: data.rows.used },
                  classCounts: data.classCounts,
                },
                training: null,
                origin: {
                  kind: "packaged",
                  file: s.model,
                  sha256: sha256(original),
                  producer,
                  scores,
                  transforms: served.transforms,
                  parity,
                  parityRows: data.inputs.length,
                  ...(corrections ? { corrections } : {}),
                },
                metrics,
                golden: pickGolden(data.inputs, yTrue, probabilities, labels),
                reference: ref,
              },
              runtime,
            ),
          (w) => w.dir,
        );
        return { ...written, parity, transforms: served.transforms, corrections };
      } finally {
        await staged.discard();
      }
    } finally {
      if (session !== portable) await session.release();
      await portable.release();
    }
  } finally {
    await probe.release();
  }
}

/** What the corrected graph changed on the evaluation rows, against the exported graph's outputs. */
function compareCorrected(
  transforms: string[],
  exported: { probabilities: Float32Array[] },
  fixed: { probabilities: Float32Array[] },
  yTrue: number[],
): Corrections {
  let labelsChanged = 0;
  let rowsChanged = 0;
  let maxAbsDelta = 0;
  let before = 0;
  let after = 0;
  exported.probabilities.forEach((a, i) => {
    const b = fixed.probabilities[i]!;
    const la = argmax(a);
    const lb = argmax(b);
    if (la !== lb) labelsChanged++;
    if (la === yTrue[i]) before++;
    if (lb === yTrue[i]) after++;
    let d = 0;
    for (let c = 0; c < a.length; c++) d = Math.max(d, Math.abs(a[c]! - b[c]!));
    if (d > 0) rowsChanged++;
    maxAbsDelta = Math.max(maxAbsDelta, d);
  });
  const rows = yTrue.length;
  return {
    reason:
      "skl2onnx's TfidfVectorizer graph tokenizes unlike scikit-learn; corrected so the bundle predicts what the Python pipeline predicts",
    transforms,
    rows,
    labelsChanged,
    rowsChanged,
    maxAbsDelta,
    accuracyBefore: before / rows,
    accuracyAfter: after / rows,
  };
}

function dim(d: number | string): string {
  return typeof d === "number" ? String(d) : "N";
}

async function openSession(bytes: Uint8Array, path: string, opts: OpenOptions): Promise<ClassifierSession> {
  try {
    return await ClassifierSession.open(bytes, opts);
  } catch (err) {
    throw explainLoadError(err, path);
  }
}

/** onnxruntime's load failures, in the user's terms. */
function explainLoadError(err: unknown, path: string): unknown {
  if (!(err instanceof UserError)) return err;
  const msg = err.message.replace("(in memory)", path);
  const op =
    /Could not find an implementation for (\S+)/.exec(msg) ??
    /Unrecognized attribute|No Op registered for (\S+)/.exec(msg);
  if (op) {
    return new UserError(
      `model ${path} uses operator ${op[1] ?? "(unknown)"} that onnxruntime-node cannot run`,
      {
        hint: "re-export with operators onnxruntime supports (e.g. a lower target opset), or replace that step",
      },
    );
  }
  const locale = /Failed to construct locale with name:?\s*([^\s:]+)/.exec(msg);
  if (locale) {
    return new UserError(`model ${path} needs the locale ${locale[1]}, which this host does not have`, {
      exitCode: ExitCode.environment,
      hint: "install it (Debian/Ubuntu: apt-get install locales && locale-gen en_US.UTF-8) to check the packaged graph against the original",
    });
  }
  return new UserError(msg, { ...(err.hint ? { hint: err.hint } : {}), exitCode: err.exitCode });
}

async function runAll(
  session: ClassifierSession,
  inputs: readonly ModelInput[],
): Promise<{ probabilities: Float32Array[]; graphLabels: string[] | undefined }> {
  const probabilities: Float32Array[] = [];
  let graphLabels: string[] | undefined;
  for (let i = 0; i < inputs.length; i += BATCH) {
    const out = await session.runRaw(inputs.slice(i, i + BATCH) as string[] | number[][]);
    // copy: runRaw rows are views over one output buffer per run
    probabilities.push(...out.probabilities.map((r) => Float32Array.from(r)));
    if (out.graphLabels) {
      graphLabels ??= [];
      graphLabels.push(...out.graphLabels);
    }
  }
  return { probabilities, graphLabels };
}

function loadEvalData(s: PackageSettings, session: ClassifierSession): EvalData {
  const table = loadCsv(s.data);
  const labelColumn = s.labelColumn ?? table.columns[table.columns.length - 1]!;
  const numericLabels = (labels: string[]) =>
    labels.every((l) => l.trim() !== "" && Number.isFinite(Number(l)))
      ? [...labels].sort((a, b) => Number(a) - Number(b))
      : labels;
  if (session.inputKind === "text") {
    if (s.featureColumns) {
      throw new UserError(`model input '${session.input.name}' takes text, not feature columns`, {
        hint: "drop --feature-columns; name the text column with --text-column",
      });
    }
    const textColumn = s.textColumn ?? "text";
    const ds = loadTextDataset({ path: s.data, textColumn, labelColumn, onEmpty: s.onEmpty });
    return {
      kind: "text",
      inputs: ds.examples.map((e) => e.text),
      yLabels: ds.examples.map((e) => e.label),
      sha256: ds.sha256,
      labelColumn,
      textColumn,
      rows: ds.rows,
      classCounts: ds.classCounts,
      dataLabels: numericLabels(ds.labels),
    };
  }
  if (s.textColumn) {
    throw new UserError(
      `model input '${session.input.name}' takes numeric features (${session.input.dtype}), not text`,
      { hint: "drop --text-column; name the feature columns with --feature-columns" },
    );
  }
  const featureColumns = s.featureColumns ?? table.columns.filter((c) => c !== labelColumn);
  if (session.featureCount !== undefined && featureColumns.length !== session.featureCount) {
    throw new UserError(
      `model input '${session.input.name}' takes ${session.featureCount} features per row but ${featureColumns.length} feature columns ${s.featureColumns ? "were given" : `are in ${s.data} besides '${labelColumn}'`} (${featureColumns.join(", ")})`,
      { hint: "pass --feature-columns a,b,c in the model's input order (and --label-column)" },
    );
  }
  const ds = loadTabularDataset({ path: s.data, featureColumns, labelColumn, onEmpty: s.onEmpty });
  return {
    kind: "features",
    inputs: ds.examples.map((e) => e.features),
    yLabels: ds.examples.map((e) => e.label),
    sha256: ds.sha256,
    labelColumn,
    featureColumns,
    rows: ds.rows,
    classCounts: ds.classCounts,
    dataLabels: numericLabels(ds.labels),
  };
}

/** Graph classes, else --labels, else the data's (sorted like scikit-learn's classes_); all must agree. */
export function resolveClasses(s: PackageSettings, info: GraphInfo, data: EvalData): string[] {
  const graph = info.classes?.labels;
  const flag = s.labels;
  const classes = graph ?? flag ?? data.dataLabels;
  const sameList = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  const unknown = data.dataLabels.filter((l) => !classes.includes(l));
  if ((graph && flag && !sameList(graph, flag)) || unknown.length > 0) {
    const fmt = (xs: readonly string[] | undefined) => (xs ? `[${xs.join(", ")}]` : "(none)");
    throw new UserError(
      `classes disagree: graph ${fmt(graph)}${info.classes ? ` (${info.classes.source})` : ""}, --labels ${fmt(flag)}, data column '${data.labelColumn}' ${fmt(data.dataLabels)}${unknown.length ? ` (not classes of the model: ${unknown.join(", ")})` : ""}`,
      {
        hint: graph
          ? "the graph's classes win: fix --labels or the label column"
          : "pass --labels with the model's classes in probability-column order",
      },
    );
  }
  return [...classes];
}

async function checkParity(
  s: PackageSettings,
  original: Uint8Array,
  info: GraphInfo,
  probe: ClassifierSession,
  scores: "probabilities" | "logits",
  served: { probabilities: Float32Array[]; graphLabels: string[] | undefined },
  classCount: number,
  inputs: readonly ModelInput[],
): Promise<number> {
  const scoresName = info.zipMap ? info.zipMap.input : probe.probabilitiesOutput;
  const bytes = info.zipMap ? exposeOutput(original, scoresName, classCount) : original;
  const ref = await openSession(bytes, s.model, {
    ...(s.inputName ? { inputName: s.inputName } : {}),
    probabilitiesOutput: scoresName,
  });
  let theirs: { probabilities: Float32Array[]; graphLabels: string[] | undefined };
  try {
    theirs = await runAll(ref, inputs);
  } finally {
    await ref.release();
  }
  const expected = scores === "logits" ? softmaxRows(theirs.probabilities) : theirs.probabilities;
  let worst = 0;
  let worstRow = 0;
  expected.forEach((row, i) => {
    const mine = served.probabilities[i]!;
    for (let c = 0; c < row.length; c++) {
      const d = Math.abs(row[c]! - mine[c]!);
      if (!(d <= worst)) {
        worst = d;
        worstRow = i;
      }
    }
  });
  if (!(worst <= PACKAGE_PARITY_TOLERANCE)) {
    throw new UserError(
      `the packaged graph disagrees with ${s.model} by ${worst.toExponential(2)} (> ${PACKAGE_PARITY_TOLERANCE}) on evaluation row ${worstRow + 1}`,
      { exitCode: ExitCode.failed, hint: "no bundle written; please report this model" },
    );
  }
  if (theirs.graphLabels && served.graphLabels) {
    const i = theirs.graphLabels.findIndex((l, r) => l !== served.graphLabels![r]);
    if (i >= 0) {
      throw new UserError(
        `the packaged graph predicts '${served.graphLabels[i]}' where ${s.model} predicts '${theirs.graphLabels[i]}' (evaluation row ${i + 1})`,
        { exitCode: ExitCode.failed, hint: "no bundle written; please report this model" },
      );
    }
  }
  return worst;
}

/** The graph's own label output must name argmax(probabilities) through `labels`, or the classes are misread. */
function checkLabelOutput(
  graphLabels: string[] | undefined,
  probabilities: Float32Array[],
  labels: string[],
) {
  if (!graphLabels) return;
  let mismatched = 0;
  graphLabels.forEach((l, i) => {
    if (labels[argmax(probabilities[i]!)] !== l) mismatched++;
  });
  if (mismatched / graphLabels.length > 0.01) {
    throw new UserError(
      `the model's label output disagrees with its probability columns read as [${labels.join(", ")}] on ${mismatched} of ${graphLabels.length} rows`,
      { hint: "pass --labels in the model's class order (scikit-learn: model.classes_)" },
    );
  }
}

async function reference(
  s: PackageSettings,
  data: EvalData,
  session: ClassifierSession,
  evalProbabilities: Float32Array[],
  labels: string[],
) {
  let inputs = data.inputs;
  let probabilities = evalProbabilities;
  let source: { path: string; sha256: string } | undefined;
  if (s.reference) {
    const table = loadCsv(s.reference);
    const columns = data.kind === "text" ? [data.textColumn!] : data.featureColumns!;
    const missing = columns.filter((c) => !table.columns.includes(c));
    if (missing.length > 0) {
      throw new UserError(
        `reference data ${s.reference} has no column ${missing.map((c) => `'${c}'`).join(", ")}`,
        {
          hint: `it needs the model's input columns (${columns.join(", ")})`,
        },
      );
    }
    inputs = table.rows.map((row, i) => {
      if (data.kind === "text") return row[data.textColumn!]!;
      return columns.map((c) => {
        const v = Number(row[c]!.trim());
        if (row[c]!.trim() === "" || !Number.isFinite(v)) {
          throw new UserError(
            `reference data ${s.reference} line ${table.lines[i]}, column '${c}': "${row[c]}" is not a number`,
          );
        }
        return v;
      });
    });
    probabilities = (await runAll(session, inputs)).probabilities;
    source = { path: s.reference, sha256: table.sha256 };
  }
  const ref = referenceDistribution(inputs, probabilities, labels);
  if (data.kind === "features") {
    ref.features = featureSchema(
      data.featureColumns!,
      inputs as number[][],
      session.input.dtype === "float64" ? "float64" : "float32",
    );
  }
  if (source) ref.source = source;
  return ref;
}

function ioSignature(
  session: ClassifierSession,
  data: EvalData,
  labels: string[],
  info: GraphInfo,
): IoSignature {
  const spec = (v: TensorSpec): TensorSpec => ({ ...v, shape: v.shape.map((d) => (d === "" ? "N" : d)) });
  const labelOutput = session.labelOutput;
  return {
    task: data.kind === "text" ? "text-classification" : "tabular-classification",
    inputs: session.tensorSpecs("inputs").map(spec),
    outputs: session.tensorSpecs("outputs").map(spec),
    probabilitiesOutput: session.probabilitiesOutput,
    ...(labelOutput ? { labelOutput } : {}),
    labels,
    ...(data.featureColumns ? { featureColumns: data.featureColumns } : {}),
    ...(info.classes?.kind === "int64" ? { labelType: "int64" as const } : {}),
  };
}
