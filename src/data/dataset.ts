import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { CsvError, parse } from "csv-parse/sync";
import { UserError } from "../util/errors.js";
import { decodeField } from "./decode.js";

/** A parsed CSV file: header names, one record per data row, and where each row starts in the file. */
export interface CsvTable {
  path: string;
  sha256: string;
  columns: string[];
  rows: Record<string, string>[];
  /** 1-based line number (in the file) where each data row starts, for error messages. */
  lines: number[];
  rowCount: number;
}

export interface RowCounts {
  total: number;
  used: number;
  dropped: number;
}

export interface TextExample {
  text: string;
  label: string;
  /** 1-based line in the file where the row starts (for reports that point at a row). */
  line: number;
}

export interface TextDataset {
  path: string;
  sha256: string;
  textColumn: string;
  labelColumn: string;
  examples: TextExample[];
  /** Sorted (code-point order); for two classes labels[1] is the "positive" class. */
  labels: string[];
  classCounts: Record<string, number>;
  rows: RowCounts;
}

export interface TabularExample {
  features: number[];
  label: string;
  /** 1-based line in the file where the row starts. */
  line: number;
}

export interface TabularDataset {
  path: string;
  sha256: string;
  featureColumns: string[];
  labelColumn: string;
  examples: TabularExample[];
  labels: string[];
  classCounts: Record<string, number>;
  rows: RowCounts;
}

interface LabelOptions {
  path: string;
  labelColumn: string;
  /** Keep only rows whose (mapped) label is one of these; other rows are dropped and counted. */
  labels?: string[] | undefined;
  /** Renames raw labels before filtering, e.g. `{ "pos": "positive" }`. Unmapped labels stay as they are. */
  labelMap?: Record<string, string> | undefined;
  /**
   * Rows whose label (or, for text, whose text) is empty: `"error"` (default) fails and lists the first
   * offending lines so the user can fix the file; `"drop"` skips them and counts them in `rows.dropped`.
   */
  onEmpty?: "error" | "drop" | undefined;
}

export interface TextDatasetOptions extends LabelOptions {
  textColumn: string;
}

export interface TabularDatasetOptions extends LabelOptions {
  featureColumns: string[];
}

const MAX_LISTED = 5;

/**
 * Reads a CSV with a real parser: any line ending (CR-only included), quoted multi-line fields,
 * doubled quotes, a UTF-8 BOM, and fields that are not valid UTF-8 (decoded per field, see decodeField).
 * Synchronous on purpose: datasets that fit a TF-IDF trainer fit in memory.
 */
export function loadCsv(path: string, options: { columns?: readonly string[] } = {}): CsvTable {
  const bytes = readDatasetFile(path);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (bytes.length === 0 || bytes.every((b) => b === 0x0a || b === 0x0d || b === 0x20 || b === 0x09)) {
    throw new UserError(`dataset ${path} is empty`, {
      hint: "expected a header line and at least one data row",
    });
  }
  if (looksBinary(bytes)) {
    throw new UserError(`dataset ${path} is not a text CSV file (it contains NUL bytes)`, {
      hint: "export the data as CSV",
    });
  }

  // csv-parse's own `bom` option yields a string field when encoding is null, so strip the BOM here.
  const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
  let parsed: { record: Buffer[]; info: { lines: number; empty_lines: number } }[];
  try {
    // Parsing bytes (encoding: null) keeps the encoding decision per field; CSV syntax is ASCII either way.
    parsed = parse(body, { encoding: null, info: true, skip_empty_lines: true }) as never;
  } catch (err) {
    if (err instanceof CsvError) {
      throw new UserError(`dataset ${path} is not valid CSV: ${err.message}`, { cause: err });
    }
    throw err;
  }
  const header = parsed[0];
  if (!header) throw new UserError(`dataset ${path} is empty`, { hint: "expected a header line" });
  const columns = header.record.map((f) => decodeField(f).trim());
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw new UserError(`dataset ${path} has the column "${c}" twice in its header`);
    seen.add(c);
  }

  // Decoding is most of the parse: a caller that reads a few columns of a wide file names them.
  const wanted = options.columns ? new Set(options.columns) : undefined;
  const rows: Record<string, string>[] = [];
  const lines: number[] = [];
  let prevLines = header.info.lines;
  let prevEmpty = header.info.empty_lines;
  for (let r = 1; r < parsed.length; r++) {
    const { record, info } = parsed[r]!;
    lines.push(prevLines + 1 + (info.empty_lines - prevEmpty));
    prevLines = info.lines;
    prevEmpty = info.empty_lines;
    const row: Record<string, string> = {};
    for (let c = 0; c < columns.length; c++) {
      if (wanted && !wanted.has(columns[c]!)) continue;
      row[columns[c]!] = decodeField(record[c]!);
    }
    rows.push(row);
  }
  if (rows.length === 0) {
    throw new UserError(`dataset ${path} has a header but no data rows`);
  }
  return { path, sha256, columns, rows, lines, rowCount: rows.length };
}

/**
 * Loads a labelled text dataset. Rows with an empty text or label fail by default (listing the first
 * lines, with a hint); pass `onEmpty: "drop"` to skip and count them instead (expose this as a flag).
 * Labels are trimmed; text is kept exactly as decoded (the model's graph lower-cases and tokenizes).
 */
export function loadTextDataset(options: TextDatasetOptions, parsed?: CsvTable): TextDataset {
  const table = parsed ?? loadCsv(options.path);
  requireColumns(table, [options.textColumn, options.labelColumn]);
  const selected = selectRows(table, options, (row) => row[options.textColumn]!.trim() === "", "empty text");
  return {
    path: options.path,
    sha256: table.sha256,
    textColumn: options.textColumn,
    labelColumn: options.labelColumn,
    examples: selected.rows.map(({ row, label, line }) => ({ text: row[options.textColumn]!, label, line })),
    labels: selected.labels,
    classCounts: selected.classCounts,
    rows: selected.counts,
  };
}

/**
 * Loads a labelled tabular dataset: every feature cell must parse as a finite number, otherwise the
 * error names the row's line and the column. Used to evaluate bring-your-own tabular ONNX models.
 */
export function loadTabularDataset(options: TabularDatasetOptions, parsed?: CsvTable): TabularDataset {
  if (options.featureColumns.length === 0) {
    throw new UserError("no feature columns given", {
      hint: "name the CSV columns the model takes as input",
    });
  }
  const table = parsed ?? loadCsv(options.path);
  requireColumns(table, [...options.featureColumns, options.labelColumn]);
  const selected = selectRows(table, options, () => false, "");
  const examples = selected.rows.map(({ row, line, label }) => ({
    features: options.featureColumns.map((column) => {
      const cell = row[column]!.trim();
      const value = cell === "" ? Number.NaN : Number(cell);
      if (!Number.isFinite(value)) {
        throw new UserError(
          `dataset ${options.path} line ${line}, column "${column}": ${cell === "" ? "empty cell" : `"${clip(cell)}" is not a number`}`,
          { hint: "feature columns must hold finite numbers" },
        );
      }
      return value;
    }),
    label,
    line,
  }));
  return {
    path: options.path,
    sha256: table.sha256,
    featureColumns: [...options.featureColumns],
    labelColumn: options.labelColumn,
    examples,
    labels: selected.labels,
    classCounts: selected.classCounts,
    rows: selected.counts,
  };
}

function selectRows(
  table: CsvTable,
  options: LabelOptions,
  isEmpty: (row: Record<string, string>) => boolean,
  emptyWhat: string,
): {
  rows: { row: Record<string, string>; line: number; label: string }[];
  labels: string[];
  classCounts: Record<string, number>;
  counts: RowCounts;
} {
  const onEmpty = options.onEmpty ?? "error";
  const subset = options.labels ? new Set(options.labels.map((l) => l.trim())) : undefined;
  if (subset && subset.size < 2) {
    throw new UserError(`label subset [${[...subset].join(", ")}] must name at least two classes`);
  }
  const emptyLines: number[] = [];
  const seenLabels = new Set<string>();
  const rows: { row: Record<string, string>; line: number; label: string }[] = [];
  let dropped = 0;
  for (let i = 0; i < table.rows.length; i++) {
    const row = table.rows[i]!;
    const raw = row[options.labelColumn]!.trim();
    const label = (options.labelMap?.[raw] ?? raw).trim();
    if (label === "" || isEmpty(row)) {
      if (onEmpty === "drop") dropped++;
      else emptyLines.push(table.lines[i]!);
      continue;
    }
    seenLabels.add(label);
    if (subset && !subset.has(label)) {
      dropped++;
      continue;
    }
    rows.push({ row, line: table.lines[i]!, label });
  }
  if (emptyLines.length > 0) {
    const what = emptyWhat ? `${emptyWhat} or an empty label` : "an empty label";
    throw new UserError(
      `dataset ${options.path}: ${emptyLines.length} row(s) with ${what}, at line(s) ${listed(emptyLines)}`,
      { hint: "fix or remove those rows, or drop them explicitly (onEmpty: drop)" },
    );
  }
  if (subset) {
    const missing = [...subset].filter((l) => !seenLabels.has(l));
    if (missing.length > 0) {
      throw new UserError(
        `label(s) ${missing.map((l) => `"${l}"`).join(", ")} never occur in column "${options.labelColumn}" of ${options.path}`,
        { hint: `labels present: ${listed(sorted([...seenLabels]).map((l) => `"${clip(l)}"`))}` },
      );
    }
  }
  const classCounts: Record<string, number> = {};
  for (const { label } of rows) classCounts[label] = (classCounts[label] ?? 0) + 1;
  const labels = sorted(Object.keys(classCounts));
  if (labels.length < 2) {
    throw new UserError(
      `dataset ${options.path} has only one class${labels[0] === undefined ? "" : ` ("${clip(labels[0])}")`} in column "${options.labelColumn}" after filtering`,
      { hint: "a classifier needs at least two classes" },
    );
  }
  const ordered: Record<string, number> = {};
  for (const l of labels) ordered[l] = classCounts[l]!;
  return {
    rows,
    labels,
    classCounts: ordered,
    counts: { total: table.rowCount, used: rows.length, dropped },
  };
}

function requireColumns(table: CsvTable, wanted: string[]): void {
  const missing = wanted.filter((c) => !table.columns.includes(c));
  if (missing.length > 0) {
    throw new UserError(`dataset ${table.path} has no column ${missing.map((c) => `"${c}"`).join(", ")}`, {
      hint: `available columns: ${table.columns.map((c) => `"${c}"`).join(", ")}`,
    });
  }
}

function readDatasetFile(path: string): Buffer {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw new UserError(`dataset not found: ${path}`, { hint: "check the --data path" });
    throw new UserError(`cannot read dataset ${path}: ${code ?? String(err)}`, { cause: err });
  }
  if (!isFile) throw new UserError(`dataset ${path} is not a regular file`);
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read dataset ${path}: ${code ?? String(err)}`, { cause: err });
  }
}

function looksBinary(bytes: Buffer): boolean {
  return bytes.subarray(0, 64 * 1024).includes(0);
}

function sorted(values: string[]): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function listed(values: (string | number)[]): string {
  const shown = values.slice(0, MAX_LISTED).join(", ");
  return values.length > MAX_LISTED ? `${shown} … (+${values.length - MAX_LISTED} more)` : shown;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
