import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stratifiedSplit } from "../../training/split.js";
import type { GatePolicy } from "../config/gate.js";
import { MODEL_FILE } from "../contracts/card.js";
import { type CsvTable, loadCsv, loadTabularDataset, loadTextDataset } from "../data/dataset.js";
import { argmax } from "../metrics/classification.js";
import { UserError } from "../util/errors.js";
import type { GateCard } from "./card.js";
import { type Disagreements, disagreements, type MetricDifference, pairedBootstrap } from "./stats.js";

/**
 * Paired evaluation: the candidate and the production model answer the same rows under
 * onnxruntime-node, inside the gate. The rows are the candidate's held-out split (reproduced from the
 * dataset, seed and test size its model.json records), a BYO bundle's evaluation CSV, or a CSV the user
 * names. Rows either model was trained on (when its model.json says how to find out) are left out.
 */

export interface PairedModel {
  card: GateCard;
  /** Directory holding model.onnx (and model.json). */
  bundleDir: string;
}

export interface EvaluationOptions {
  /** Evaluate on every labelled row of this CSV instead of the candidate's held-out split. */
  evalData?: string | undefined;
  /** Where the candidate's training CSV is now, when the path in its model.json no longer resolves. */
  dataset?: string | undefined;
}

export interface DisagreementExample {
  /** 1-based line of the row in the evaluation CSV. */
  line: number;
  /** Text (truncated) or "column=value" pairs for tabular rows. */
  input: string;
  truth: string;
  candidate: { label: string; probability: number };
  baseline: { label: string; probability: number };
}

export interface ClassFlips {
  /** True class of the rows. */
  label: string;
  /** Rows of this class only the candidate got right / only the production model got right. */
  candidateOnly: number;
  baselineOnly: number;
}

export interface PairedComparison {
  mode: "paired";
  evaluation: {
    /** What the rows are, e.g. "held-out split of data.csv (seed 42, test size 0.2)". */
    source: string;
    path: string;
    rows: number;
    /** Rows left out because a model was trained on them. */
    excluded: number;
    /** Caveats worth reading (overlap that could not be checked, split reproduced imperfectly). */
    notes: string[];
  };
  bootstrap: { resamples: number; seed: number; confidence: number };
  metrics: MetricDifference[];
  accuracy: Disagreements;
  flips: ClassFlips[];
  /** Production answer → candidate answer on rows where they differ, most frequent first. */
  transitions: { from: string; to: string; count: number }[];
  examples: DisagreementExample[];
  /** Wall time of the paired evaluation (load data, run both models, bootstrap). */
  ms: number;
}

export interface UnpairedComparison {
  mode: "unpaired";
  /** Why the models could not be scored on the same rows. */
  reason: string;
}

export type Comparison = PairedComparison | UnpairedComparison;

/** One loaded CSV per file, shared by the candidate's and the production model's row selection. */
class Tables {
  /** Only the columns the models read (and the labels) are decoded: most of the parse time. */
  constructor(private readonly columns: readonly string[]) {}
  private readonly byPath = new Map<string, CsvTable>();
  /** Replayed splits, by table and everything that decides the split (candidate and production often share one). */
  readonly splits = new Map<string, ReturnType<typeof replaySplit>>();
  private readonly shaOf = new Map<string, string>();

  load(path: string): CsvTable {
    const key = resolve(path);
    let table = this.byPath.get(key);
    if (!table) {
      table = loadCsv(path, { columns: this.columns });
      this.byPath.set(key, table);
      this.shaOf.set(key, table.sha256);
    }
    return table;
  }

  /** The first existing file among `paths` whose bytes hash to `sha256`. */
  findBySha(sha256: string, paths: (string | undefined)[]): CsvTable | undefined {
    for (const p of paths) {
      if (!p || !existsSync(p)) continue;
      const key = resolve(p);
      let sha = this.shaOf.get(key);
      if (sha === undefined) {
        try {
          sha = createHash("sha256").update(readFileSync(p)).digest("hex");
        } catch {
          continue;
        }
        this.shaOf.set(key, sha);
      }
      if (sha === sha256) return this.load(p);
    }
    return undefined;
  }
}

interface EvalRows {
  source: string;
  table: CsvTable;
  /** Indices into table.rows. */
  rows: number[];
  /** True label per row (label map applied). */
  truth: string[];
  notes: string[];
}

const BATCH = 512;
const TEXT_CLIP = 80;

/** Scores both models on the same rows and compares them. Throws only for a bad --eval-data. */
export async function comparePaired(
  candidate: PairedModel,
  baseline: PairedModel,
  policy: GatePolicy,
  options: EvaluationOptions = {},
): Promise<Comparison> {
  const started = performance.now();
  const tables = new Tables(columnsRead(candidate.card, baseline.card));
  const labels = candidate.card.io?.labels;
  const baseLabels = baseline.card.io?.labels;
  if (!labels || !baseLabels)
    return unpaired(`${!labels ? "the candidate's" : "the production"} model.json has no io.labels`);
  if (labels.length !== baseLabels.length || !labels.every((l) => baseLabels.includes(l))) {
    return unpaired(
      `the models predict different classes (candidate ${labels.join(", ")}; production ${baseLabels.join(", ")})`,
    );
  }
  const conflict = labelMapConflict(candidate.card, baseline.card, labels);
  if (conflict) return unpaired(conflict);
  let rows: EvalRows;
  try {
    rows = evaluationRows(candidate.card, tables, options);
  } catch (err) {
    if (options.evalData) throw err;
    return unpaired(`cannot reproduce the candidate's evaluation rows: ${messageOf(err)}`);
  }

  // Leave out rows either model was trained on, when its record says how to find them.
  const notes = [...rows.notes];
  let keep = rows.rows.map((_, i) => i);
  for (const [who, model] of [
    ["candidate", candidate],
    ["production model", baseline],
  ] as const) {
    const seen = trainingRows(model.card, tables, [rows.table.path, options.dataset]);
    if (seen.status === "unknown") {
      if (who === "production model" || options.evalData) notes.push(`${who}: ${seen.reason}`);
      continue;
    }
    const before = keep.length;
    keep = keep.filter((i) => !seen.keys.has(inputKey(model.card, rows.table, rows.rows[i]!)));
    if (keep.length < before) {
      notes.push(`${before - keep.length} rows whose input the ${who} was trained on are left out`);
    }
  }
  const excluded = rows.rows.length - keep.length;
  if (keep.length === 0) return unpaired(`no evaluation rows left: both models were trained on all of them`);
  const evalRows = keep.map((i) => rows.rows[i]!);
  const truthLabels = keep.map((i) => rows.truth[i]!);

  let cand: Scored;
  let base: Scored;
  try {
    cand = await score(candidate, rows.table, evalRows, labels);
  } catch (err) {
    return unpaired(`cannot run the candidate on the evaluation rows: ${messageOf(err)}`);
  }
  try {
    base = await score(baseline, rows.table, evalRows, labels);
  } catch (err) {
    return unpaired(`cannot run the production model on the evaluation rows: ${messageOf(err)}`);
  }

  const index = new Map(labels.map((l, i) => [l, i]));
  const yTrue = Int32Array.from(truthLabels, (l) => index.get(l)!);
  const input = {
    labels,
    yTrue,
    candidate: cand.pred,
    baseline: base.pred,
    ...(labels.length === 2 ? { candidateScore: cand.positive, baselineScore: base.positive } : {}),
  };
  const bootstrap = {
    resamples: policy.compare.resamples,
    seed: policy.compare.seed,
    confidence: policy.compare.confidence,
  };
  const metrics = pairedBootstrap(input, bootstrap);

  // Self-check: on the full held-out split the candidate must score what its model.json says.
  const cardAccuracy = candidate.card.metrics.accuracy;
  if (!options.evalData && excluded === 0 && cardAccuracy !== undefined) {
    const acc = metrics.find((m) => m.key === "accuracy")?.candidate;
    if (acc !== undefined && Math.abs(acc - cardAccuracy) > 1e-6) {
      notes.push(
        `the candidate scores ${acc.toFixed(4)} on these rows but its model.json says ${cardAccuracy.toFixed(4)}: the rows may not be its original test split`,
      );
    }
  }

  const flips: ClassFlips[] = labels.map((label) => ({ label, candidateOnly: 0, baselineOnly: 0 }));
  const transitions = new Map<string, number>();
  const differing: number[] = [];
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i]!;
    const c = cand.pred[i]!;
    const b = base.pred[i]!;
    if (c === b) continue;
    differing.push(i);
    if (c === t) flips[t]!.candidateOnly++;
    else if (b === t) flips[t]!.baselineOnly++;
    const key = `${labels[b]}\u0000${labels[c]}`;
    transitions.set(key, (transitions.get(key) ?? 0) + 1);
  }

  // Rows the candidate broke first (what a reviewer must see), then rows it fixed; surest first.
  const rank = (i: number) => {
    const t = yTrue[i]!;
    const broke = base.pred[i] === t ? 0 : cand.pred[i] === t ? 1 : 2;
    return { broke, margin: Math.abs(cand.probs[i]![t]! - base.probs[i]![t]!) };
  };
  const picked = differing
    .map((i) => ({ i, ...rank(i) }))
    .sort((a, b) => a.broke - b.broke || b.margin - a.margin || a.i - b.i)
    .slice(0, policy.compare.examples);
  const examples = picked.map(({ i }) => {
    const row = evalRows[i]!;
    const cp = cand.pred[i]!;
    const bp = base.pred[i]!;
    return {
      line: rows.table.lines[row]!,
      input: describeInput(candidate.card, rows.table, row),
      truth: labels[yTrue[i]!]!,
      candidate: { label: labels[cp]!, probability: round4(cand.probs[i]![cp]!) },
      baseline: { label: labels[bp]!, probability: round4(base.probs[i]![bp]!) },
    };
  });

  return {
    mode: "paired",
    evaluation: {
      source: rows.source,
      path: rows.table.path,
      rows: evalRows.length,
      excluded,
      notes,
    },
    bootstrap,
    metrics,
    accuracy: disagreements(input),
    flips,
    transitions: [...transitions.entries()]
      .map(([k, count]) => {
        const [from, to] = k.split("\u0000") as [string, string];
        return { from, to, count };
      })
      .sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to)),
    examples,
    ms: Math.round(performance.now() - started),
  };
}

export function unpaired(reason: string): UnpairedComparison {
  return { mode: "unpaired", reason };
}

/** The rows to evaluate on, with their true labels in the candidate's vocabulary. */
function evaluationRows(card: GateCard, tables: Tables, options: EvaluationOptions): EvalRows {
  const labelColumn = card.dataset?.labelColumn;
  if (!labelColumn) throw new UserError("the candidate's model.json has no dataset.labelColumn");
  const labelMap = stringMap(card.training?.params?.labelMap);
  const labels = card.io?.labels ?? [];
  if (options.evalData) {
    const table = tables.load(options.evalData);
    const picked = selectLabelled(card, table, labelColumn, labelMap, labels);
    if (picked.rows.length === 0)
      throw new UserError(
        `--eval-data ${options.evalData} has no rows labelled ${labels.join(", ")} in column "${labelColumn}"`,
      );
    return {
      source: `--eval-data ${options.evalData}`,
      table,
      ...picked,
      notes:
        picked.dropped > 0
          ? [
              `${picked.dropped} rows of ${options.evalData} skipped (empty input or a label the models do not predict)`,
            ]
          : [],
    };
  }

  const sha = card.dataset?.sha256;
  const recorded = card.dataset?.path;
  if (!sha || !recorded) throw new UserError("its model.json does not record the dataset (path and sha256)");
  const table = tables.findBySha(sha, [options.dataset, recorded, process.env.MODELSHIP_DATA]);
  if (!table) {
    throw new UserError(
      `its dataset ${recorded} (sha256 ${sha.slice(0, 12)}…) is not here; pass --dataset <csv> (same bytes) or --eval-data <csv>`,
    );
  }
  const split = recordedSplit(card);
  if (!split) {
    // A bundle without a training record (bring-your-own): its evaluation CSV is the held-out data.
    const picked = selectLabelled(card, table, labelColumn, labelMap, labels);
    return { source: `evaluation data ${table.path} (all labelled rows)`, table, ...picked, notes: [] };
  }
  const heldOut = reproduceSplit(card, table, split, tables);
  const expected = card.dataset?.rows?.test;
  const notes: string[] = [];
  if (expected !== undefined && expected !== heldOut.test.length) {
    throw new UserError(
      `reproducing its split gave ${heldOut.test.length} test rows but its model.json records ${expected}`,
    );
  }
  return {
    source: `held-out split of ${table.path} (seed ${split.seed}, test size ${split.testSize})`,
    table,
    rows: heldOut.test.map((i) => heldOut.rowIndex[i]!),
    truth: heldOut.test.map((i) => heldOut.labels[i]!),
    notes,
  };
}

interface SplitRecord {
  seed: number;
  testSize: number;
  labelSubset: string[] | undefined;
  labelMap: Record<string, string> | undefined;
}

function recordedSplit(card: GateCard): SplitRecord | undefined {
  const t = card.training;
  const testSize = t?.params?.testSize;
  const seed = t?.seed ?? t?.params?.seed;
  if (typeof seed !== "number" || typeof testSize !== "number") return undefined;
  const subset = t?.params?.labelSubset;
  return {
    seed,
    testSize,
    labelSubset: Array.isArray(subset) ? subset.map(String) : undefined,
    labelMap: stringMap(t?.params?.labelMap),
  };
}

/** The trainer's own row selection and stratified split, replayed on the same bytes (memoised). */
function reproduceSplit(card: GateCard, table: CsvTable, split: SplitRecord, tables: Tables) {
  const key = JSON.stringify([
    resolve(table.path),
    split,
    card.io?.task,
    card.io?.featureColumns,
    card.dataset?.textColumn,
    card.dataset?.labelColumn,
  ]);
  let replayed = tables.splits.get(key);
  if (!replayed) {
    replayed = replaySplit(card, table, split);
    tables.splits.set(key, replayed);
  }
  return replayed;
}

function replaySplit(card: GateCard, table: CsvTable, split: SplitRecord) {
  const labelColumn = card.dataset!.labelColumn!;
  const lineToRow = new Map(table.lines.map((line, i) => [line, i]));
  let lines: number[];
  let labels: string[];
  const featureColumns = card.io?.featureColumns;
  const common = {
    path: table.path,
    labelColumn,
    labels: split.labelSubset,
    labelMap: split.labelMap,
    // Training either dropped empty rows or had none (it fails on them otherwise): same rows.
    onEmpty: "drop" as const,
  };
  if (card.io?.task === "tabular-classification" && featureColumns) {
    const ds = loadTabularDataset({ ...common, featureColumns }, table);
    lines = ds.examples.map((e) => e.line);
    labels = ds.examples.map((e) => e.label);
  } else {
    const ds = loadTextDataset({ ...common, textColumn: card.dataset?.textColumn ?? "text" }, table);
    lines = ds.examples.map((e) => e.line);
    labels = ds.examples.map((e) => e.label);
  }
  const { train, test } = stratifiedSplit(labels, split.testSize, split.seed);
  return { train, test, labels, rowIndex: lines.map((l) => lineToRow.get(l)!) };
}

type Seen = { status: "known"; keys: Set<string> } | { status: "unknown"; reason: string };

/** The inputs a model was trained on, when its model.json records the data and the split. */
function trainingRows(card: GateCard, tables: Tables, hints: (string | undefined)[]): Seen {
  const split = recordedSplit(card);
  if (!split) {
    return {
      status: "unknown",
      reason:
        "its model.json has no training record (bring-your-own), so rows it was trained on cannot be left out",
    };
  }
  const sha = card.dataset?.sha256;
  if (!sha || !card.dataset?.labelColumn)
    return { status: "unknown", reason: "its model.json does not record its dataset" };
  const table = tables.findBySha(sha, [...hints, card.dataset.path, process.env.MODELSHIP_DATA]);
  if (!table) {
    return {
      status: "unknown",
      reason: `its training data ${card.dataset.path ?? ""} (sha256 ${sha.slice(0, 12)}…) is not here, so rows it was trained on cannot be left out`,
    };
  }
  try {
    const { train, rowIndex } = reproduceSplit(card, table, split, tables);
    return { status: "known", keys: new Set(train.map((i) => inputKey(card, table, rowIndex[i]!))) };
  } catch (err) {
    return { status: "unknown", reason: `cannot replay its split: ${messageOf(err)}` };
  }
}

/** What the model sees of a row: its text, or its feature values in order. */
function inputKey(card: GateCard, table: CsvTable, row: number): string {
  const record = table.rows[row]!;
  const features = card.io?.featureColumns;
  if (card.io?.task === "tabular-classification" && features)
    return features.map((f) => Number((record[f] ?? "").trim())).join(",");
  return record[card.dataset?.textColumn ?? "text"] ?? "";
}

function selectLabelled(
  card: GateCard,
  table: CsvTable,
  labelColumn: string,
  labelMap: Record<string, string> | undefined,
  labels: readonly string[],
): { rows: number[]; truth: string[]; dropped: number } {
  if (!table.columns.includes(labelColumn))
    throw new UserError(`${table.path} has no label column "${labelColumn}"`);
  const wanted = new Set(labels);
  const tabular = card.io?.task === "tabular-classification";
  const textColumn = card.dataset?.textColumn ?? "text";
  const rows: number[] = [];
  const truth: string[] = [];
  table.rows.forEach((record, i) => {
    const raw = (record[labelColumn] ?? "").trim();
    const label = labelMap?.[raw] ?? raw;
    if (!wanted.has(label)) return;
    if (!tabular && (record[textColumn] ?? "").trim() === "") return;
    rows.push(i);
    truth.push(label);
  });
  return { rows, truth, dropped: table.rows.length - rows.length };
}

interface Scored {
  /** Predicted class index (candidate's label order) per row. */
  pred: Int32Array;
  /** Probabilities per row in the candidate's label order. */
  probs: Float64Array[];
  /** P(labels[1]) per row, for ROC AUC. */
  positive: Float64Array;
}

/** Runs one bundle over the rows, feeding what its IO signature asks for (text column or features). */
async function score(
  model: PairedModel,
  table: CsvTable,
  rows: number[],
  labels: readonly string[],
): Promise<Scored> {
  const io = model.card.io;
  const own = io?.labels ?? [];
  // Lazily: onnxruntime-node is a native module the bundled action resolves from the workspace, and a
  // card-only gate never needs it (a missing install then shows as an unpaired comparison).
  const { ClassifierSession } = await import("../onnx/session.js");
  const session = await ClassifierSession.open(join(model.bundleDir, MODEL_FILE), {
    ...(io?.inputs?.[0]?.name ? { inputName: io.inputs[0].name } : {}),
    ...(io?.probabilitiesOutput ? { probabilitiesOutput: io.probabilitiesOutput } : {}),
    labels: own,
  });
  try {
    const inputs = modelInputs(model.card, session.inputKind, table, rows);
    // Column j of this model's output is class `own[j]`; reorder to the candidate's label order.
    const columnOf = labels.map((l) => own.indexOf(l));
    const pred = new Int32Array(rows.length);
    const positive = new Float64Array(rows.length);
    const probs: Float64Array[] = [];
    for (let start = 0; start < inputs.length; start += BATCH) {
      const batch = inputs.slice(start, start + BATCH) as string[] | number[][];
      const out = await session.predict(batch);
      out.probabilities.forEach((row, r) => {
        const p = Float64Array.from(columnOf, (j) => row[j]!);
        const i = start + r;
        probs.push(p);
        pred[i] = argmax(p);
        positive[i] = p[1] ?? 0;
      });
    }
    return { pred, probs, positive };
  } finally {
    await session.release();
  }
}

function modelInputs(
  card: GateCard,
  kind: "text" | "features",
  table: CsvTable,
  rows: number[],
): string[] | number[][] {
  if (kind === "text") {
    const column = card.dataset?.textColumn ?? "text";
    if (!table.columns.includes(column))
      throw new UserError(`${table.path} has no text column "${column}" (the model reads it)`);
    return rows.map((r) => table.rows[r]![column] ?? "");
  }
  const features = card.io?.featureColumns;
  if (!features || features.length === 0)
    throw new UserError("its model.json has no io.featureColumns (which CSV columns to feed)");
  const missing = features.filter((f) => !table.columns.includes(f));
  if (missing.length > 0)
    throw new UserError(`${table.path} lacks the feature columns ${missing.map((m) => `"${m}"`).join(", ")}`);
  return rows.map((r) => {
    const record = table.rows[r]!;
    return features.map((f) => {
      const cell = (record[f] ?? "").trim();
      const v = cell === "" ? Number.NaN : Number(cell);
      if (!Number.isFinite(v))
        throw new UserError(`${table.path} line ${table.lines[r]}, column "${f}": "${cell}" is not a number`);
      return v;
    });
  });
}

function describeInput(card: GateCard, table: CsvTable, row: number): string {
  const record = table.rows[row]!;
  const features = card.io?.featureColumns;
  if (card.io?.task === "tabular-classification" && features) {
    const text = features.map((f) => `${f}=${(record[f] ?? "").trim()}`).join(", ");
    return text.length > 160 ? `${text.slice(0, 159)}…` : text;
  }
  const text = (record[card.dataset?.textColumn ?? "text"] ?? "").replace(/\s+/g, " ").trim();
  return text.length > TEXT_CLIP ? `${text.slice(0, TEXT_CLIP - 1)}…` : text;
}

/** Every CSV column either model's rows are built from: label, text or feature columns. */
function columnsRead(...cards: GateCard[]): string[] {
  return cards.flatMap((c) => [
    c.dataset?.labelColumn ?? "",
    c.dataset?.textColumn ?? "text",
    ...(c.io?.featureColumns ?? []),
  ]);
}

/**
 * Both models must read the data's labels the same way for one truth to judge them: a raw label that
 * one model's label map turns into class X and the other's into class Y (both real classes) makes
 * "right" mean different things.
 */
function labelMapConflict(
  candidate: GateCard,
  baseline: GateCard,
  labels: readonly string[],
): string | undefined {
  const cm = stringMap(candidate.training?.params?.labelMap) ?? {};
  const bm = stringMap(baseline.training?.params?.labelMap) ?? {};
  const classes = new Set(labels);
  for (const raw of new Set([...Object.keys(cm), ...Object.keys(bm)])) {
    const c = cm[raw] ?? raw;
    const b = bm[raw] ?? raw;
    if (c !== b && classes.has(c) && classes.has(b)) {
      return `the models read the labels differently (raw label "${raw}" is "${c}" for the candidate and "${b}" for production, per their label maps)`;
    }
  }
  return undefined;
}

function stringMap(value: unknown): Record<string, string> | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}
