import { stat } from "node:fs/promises";
import { join } from "node:path";
import { readBundle } from "../bundle/read.js";
import type { CheckLimits } from "../config/train.js";
import {
  CARD_FILE,
  type Metrics,
  MODEL_FILE,
  type ModelCard,
  type RuntimeFigures,
} from "../contracts/card.js";
import { loadTabularDataset, loadTextDataset } from "../data/dataset.js";
import { evaluateClassifier } from "../metrics/classification.js";
import { type MeasureOptions, type ModelInput, measureRuntime } from "../onnx/runtime.js";
import { ClassifierSession } from "../onnx/session.js";
import { UserError } from "../util/errors.js";
import { sha256File } from "../util/fs.js";
import { textTable } from "../util/progress.js";

export interface ValidateOptions {
  /** A bundle directory or a bare .onnx file. */
  model: string;
  data: string;
  labelColumn?: string | undefined;
  textColumn?: string | undefined;
  featureColumns?: string[] | undefined;
  inputName?: string | undefined;
  /** Class labels in the model's probability-column order (bare models; default: sorted data labels). */
  labels?: string[] | undefined;
  onEmpty?: "error" | "drop" | undefined;
  limits: CheckLimits;
  measure?: MeasureOptions;
  onStage?: (stage: "load" | "evaluate" | "runtime") => void;
}

export interface Check {
  name: string;
  passed: boolean;
  /** Human-readable measured value and the limit, e.g. "12.3 ms < 100 ms". */
  detail: string;
  value?: number;
  limit?: number;
}

export interface ValidationReport {
  model: { path: string; sha256: string; bundle: { name: string; version: string } | null };
  task: "text-classification" | "tabular-classification";
  input: string;
  labels: string[];
  data: { path: string; sha256: string; rows: number; dropped: number };
  metrics: Metrics;
  runtime: RuntimeFigures;
  checks: Check[];
  passed: boolean;
}

const GOLDEN_TOLERANCE = 1e-4;
const BATCH = 512;

/** Evaluates any ONNX classifier on a labelled CSV and runs the production-checklist checks. */
export async function validateModel(opts: ValidateOptions): Promise<ValidationReport> {
  const { modelPath, card } = await locateModel(opts.model);
  const labelColumn = opts.labelColumn ?? card?.dataset.labelColumn;
  if (!labelColumn) throw new UserError("no label column given", { hint: "pass --label-column" });

  const session = await ClassifierSession.open(modelPath, {
    ...(opts.inputName ? { inputName: opts.inputName } : card ? { inputName: card.io.inputs[0]!.name } : {}),
    ...(card ? { probabilitiesOutput: card.io.probabilitiesOutput } : {}),
  });
  try {
    opts.onStage?.("load");
    const { inputs, yLabels, dataInfo } = loadData(opts, session, card, labelColumn);
    const labels = resolveLabels(opts, card, session, yLabels);
    session.setLabels(labels);
    const index = new Map(labels.map((l, i) => [l, i]));
    const unknown = [...new Set(yLabels.filter((l) => !index.has(l)))];
    if (unknown.length > 0) {
      throw new UserError(
        `data labels ${unknown
          .slice(0, 5)
          .map((l) => `"${l}"`)
          .join(", ")} are not classes of the model (${labels.join(", ")})`,
        { hint: "pass --labels with the model's classes in probability-column order" },
      );
    }

    opts.onStage?.("evaluate");
    const probabilities: Float32Array[] = [];
    let mismatched = 0;
    let compared = 0;
    for (let i = 0; i < inputs.length; i += BATCH) {
      const batch = inputs.slice(i, i + BATCH) as string[] | number[][];
      const out = await session.runRaw(batch);
      probabilities.push(...out.probabilities);
      if (out.graphLabels) {
        out.probabilities.forEach((row, r) => {
          const own = out.graphLabels![r]!;
          if (!index.has(own)) return;
          compared++;
          if (index.get(own) !== argmaxOf(row)) mismatched++;
        });
      }
    }
    // The graph's own label output disagreeing with argmax(probabilities) means our column→label
    // mapping is wrong; metrics would be silently meaningless.
    if (compared > 0 && mismatched / compared > 0.01) {
      throw new UserError(
        `the model's label output disagrees with the probability columns read as [${labels.join(", ")}] on ${mismatched} of ${compared} rows`,
        { hint: "pass --labels in the model's class order (sklearn: model.classes_)" },
      );
    }
    const metrics = evaluateClassifier({
      labels,
      yTrue: yLabels.map((l) => index.get(l)!),
      probabilities,
    });

    opts.onStage?.("runtime");
    const runtime = await measureRuntime(modelPath, inputs.slice(0, 256), {
      ...opts.measure,
      labels,
      ...(opts.inputName ? { inputName: opts.inputName } : {}),
      probabilitiesOutput: session.probabilitiesOutput,
    });
    const checks = runtimeChecks(runtime, opts.limits);
    if (card) checks.push(await goldenCheck(session, card));
    return {
      model: {
        path: modelPath,
        sha256: card?.model.sha256 ?? (await sha256File(modelPath)),
        bundle: card ? { name: card.name, version: card.version } : null,
      },
      task: session.inputKind === "text" ? "text-classification" : "tabular-classification",
      input: session.input.name,
      labels,
      data: dataInfo,
      metrics,
      runtime,
      checks,
      passed: checks.every((c) => c.passed),
    };
  } finally {
    await session.release();
  }
}

export function runtimeChecks(runtime: RuntimeFigures, limits: CheckLimits): Check[] {
  const sizeMb = runtime.fileSizeBytes / (1024 * 1024);
  const lt = (name: string, value: number, limit: number, unit: string, digits: number): Check => ({
    name,
    passed: value < limit,
    value,
    limit,
    detail: `${value.toFixed(digits)} ${unit} ${value < limit ? "<" : "≥"} ${limit} ${unit}`,
  });
  return [
    lt("model size", sizeMb, limits.maxSizeMb, "MB", 2),
    lt("load time", runtime.loadMs, limits.maxLoadMs, "ms", 1),
    lt("single-row p95 latency", runtime.singleRowP95Ms, limits.maxP95Ms, "ms", 2),
  ];
}

async function goldenCheck(session: ClassifierSession, card: ModelCard): Promise<Check> {
  const inputs = card.golden.map((g) => g.input) as string[] | number[][];
  const { probabilities } = await session.predict(inputs);
  let worst = 0;
  card.golden.forEach((g, i) => {
    g.expected.probabilities.forEach((p, c) => {
      worst = Math.max(worst, Math.abs(p - probabilities[i]![c]!));
    });
  });
  const passed = worst <= GOLDEN_TOLERANCE;
  return {
    name: "golden examples reproduce",
    passed,
    value: worst,
    limit: GOLDEN_TOLERANCE,
    detail: `${card.golden.length} examples, max |Δp| ${worst.toExponential(1)} ${passed ? "≤" : ">"} ${GOLDEN_TOLERANCE}`,
  };
}

async function locateModel(model: string): Promise<{ modelPath: string; card: ModelCard | undefined }> {
  let isDir: boolean;
  try {
    isDir = (await stat(model)).isDirectory();
  } catch {
    throw new UserError(`model not found: ${model}`, { hint: "pass a bundle directory or a .onnx file" });
  }
  if (!isDir) return { modelPath: model, card: undefined };
  try {
    await stat(join(model, CARD_FILE));
  } catch {
    // a directory with just model.onnx is a bare model
    return { modelPath: join(model, MODEL_FILE), card: undefined };
  }
  const bundle = await readBundle(model);
  return { modelPath: bundle.modelPath, card: bundle.card };
}

function loadData(
  opts: ValidateOptions,
  session: ClassifierSession,
  card: ModelCard | undefined,
  labelColumn: string,
) {
  if (session.inputKind === "text") {
    if (opts.featureColumns) {
      throw new UserError(`model input '${session.input.name}' takes text, not feature columns`, {
        hint: "use --text-column",
      });
    }
    const textColumn = opts.textColumn ?? card?.dataset.textColumn;
    if (!textColumn) throw new UserError("the model takes text: pass --text-column");
    const ds = loadTextDataset({
      path: opts.data,
      textColumn,
      labelColumn,
      labels: opts.labels ?? (card ? card.io.labels : undefined),
      onEmpty: opts.onEmpty,
    });
    return {
      inputs: ds.examples.map((e) => e.text) as ModelInput[],
      yLabels: ds.examples.map((e) => e.label),
      dataInfo: { path: opts.data, sha256: ds.sha256, rows: ds.rows.used, dropped: ds.rows.dropped },
    };
  }
  const featureColumns = opts.featureColumns ?? card?.io.featureColumns;
  if (!featureColumns) {
    throw new UserError(
      `model input '${session.input.name}' takes numeric features (${session.input.dtype} [${session.input.shape.join(", ")}]): pass --feature-columns a,b,c`,
    );
  }
  if (session.featureCount !== undefined && featureColumns.length !== session.featureCount) {
    throw new UserError(
      `model input '${session.input.name}' expects ${session.featureCount} features per row but ${featureColumns.length} feature columns were given (${featureColumns.join(", ")})`,
    );
  }
  const ds = loadTabularDataset({
    path: opts.data,
    featureColumns,
    labelColumn,
    labels: opts.labels ?? (card ? card.io.labels : undefined),
    onEmpty: opts.onEmpty,
  });
  return {
    inputs: ds.examples.map((e) => e.features) as ModelInput[],
    yLabels: ds.examples.map((e) => e.label),
    dataInfo: { path: opts.data, sha256: ds.sha256, rows: ds.rows.used, dropped: ds.rows.dropped },
  };
}

/** Bundle labels, else --labels, else the data's labels sorted as scikit-learn's `classes_` are. */
function resolveLabels(
  opts: ValidateOptions,
  card: ModelCard | undefined,
  session: ClassifierSession,
  yLabels: string[],
): string[] {
  if (card) return card.io.labels;
  if (opts.labels) return opts.labels;
  const present = [...new Set(yLabels)];
  const numeric = present.every((l) => l.trim() !== "" && Number.isFinite(Number(l)));
  const labels = numeric
    ? present.sort((a, b) => Number(a) - Number(b))
    : present.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (session.classCount !== undefined && session.classCount !== labels.length) {
    throw new UserError(
      `model outputs ${session.classCount} class probabilities but the data has ${labels.length} labels (${labels.join(", ")})`,
      { hint: "pass --labels with the model's classes in probability-column order" },
    );
  }
  return labels;
}

function argmaxOf(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export function checksTable(checks: readonly Check[]): string {
  return textTable(
    ["check", "result", "measured"],
    checks.map((c) => [c.name, c.passed ? "pass" : "FAIL", c.detail]),
  );
}
