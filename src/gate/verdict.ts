import type { GatePolicy } from "../config/gate.js";
import { describeCard, type GateCard } from "./card.js";
import type { Comparison } from "./paired.js";
import { classFloor } from "./policy.js";
import type { Disagreements, MetricDifference } from "./stats.js";

/** `info`: a candidate metric no rule covers, shown so the report always carries the numbers. */
export type RowKind = "minimum" | "regression" | "runtime" | "golden" | "required" | "info";
export type RowStatus = "pass" | "fail";

export interface VerdictRow {
  kind: RowKind;
  /** Policy key the row enforces, e.g. `maxDrop.classF1[positive]` — what a failure names. */
  rule: string;
  metric: string;
  candidate: number | null;
  baseline: number | null;
  /** candidate − baseline, when both are known. */
  delta: number | null;
  /** Human form of the limit, e.g. "≥ 0.900" or "drop ≤ 0.005". */
  limit: string;
  status: RowStatus;
  /** Why a row failed without numbers (missing metric, parity not checkable). */
  note?: string;
  /** Paired rows: the confidence interval of candidate − baseline on the shared evaluation rows. */
  interval?: [number, number];
  /** Paired accuracy: McNemar's exact p-value. */
  pValue?: number;
  /** Paired rows: whether the difference is statistically significant, and which way. */
  significant?: "drop" | "gain" | null;
  /** Regression rows: scored on the same rows (true) or each model's own test split (false). */
  paired?: boolean;
}

export type GoldenResult =
  | { status: "checked"; examples: number; mismatches: number; maxAbsDiff: number; firstMismatch?: string }
  | { status: "unavailable"; reason: string };

export interface ModelRef {
  name: string | null;
  version: string | null;
  label: string;
  source: string;
}

export interface Verdict {
  passed: boolean;
  candidate: ModelRef;
  /** null = no production model yet (first deploy): only absolute rules were applied. */
  baseline: ModelRef | null;
  rows: VerdictRow[];
  /** One line per failing rule: `<rule>: <what happened>`. */
  failing: string[];
  /** Candidate's confusion matrix, for the report. */
  confusionMatrix: { labels: string[]; matrix: number[][] } | null;
  /** How candidate and production were compared; null without a production model. */
  comparison: Comparison | null;
  policy: GatePolicy;
}

export interface GateSubject {
  card: GateCard;
  source: string;
  /** Directory with the model's model.onnx, when available: needed to score it on the evaluation rows. */
  bundleDir?: string | undefined;
}

// Metrics are printed with 4 decimals; comparisons allow for float noise below that.
const EPS = 1e-9;

/** Applies the policy to a candidate and (optionally) the production baseline. Pure; never throws on data. */
export function evaluateGate(
  candidate: GateSubject,
  baseline: GateSubject | null,
  policy: GatePolicy,
  golden: GoldenResult | undefined,
  comparison?: Comparison,
): Verdict {
  const rows: VerdictRow[] = [];
  const c = candidate.card.metrics;
  const b = baseline?.card.metrics;

  const scalar = [
    ["accuracy", "accuracy"],
    ["macroF1", "macro-F1"],
    ["rocAuc", "ROC AUC"],
  ] as const;

  // The contract guarantees these two; a card without them cannot be judged at all.
  for (const key of ["accuracy", "macroF1"] as const) {
    if (c[key] === undefined && policy.minimum[key] === undefined && !baseline) {
      rows.push(missingRow("required", `metrics.${key}`, key, null, "present in model.json"));
    }
  }

  for (const [key, label] of scalar) {
    const floor = policy.minimum[key];
    if (floor !== undefined) rows.push(minimumRow(`minimum.${key}`, label, c[key], b?.[key], floor, key));
  }
  const labels = classLabels(candidate.card, baseline?.card ?? null, policy);
  for (const cls of labels) {
    const floor = classFloor(policy, cls);
    if (floor === undefined) continue;
    rows.push(
      minimumRow(
        `minimum.classF1[${cls}]`,
        `F1 (${cls})`,
        c.classes?.[cls]?.f1,
        b?.classes?.[cls]?.f1,
        floor,
        `classes.${cls}.f1`,
      ),
    );
  }

  const paired = baseline && comparison?.mode === "paired" ? comparison : undefined;
  if (paired) {
    const labelOf: Record<string, string> = { accuracy: "accuracy", macroF1: "macro-F1", rocAuc: "ROC AUC" };
    for (const d of paired.metrics) {
      const cls = /^classF1\[(.*)\]$/.exec(d.key)?.[1];
      const label = cls === undefined ? (labelOf[d.key] ?? d.key) : `F1 (${cls})`;
      const maxDrop =
        cls === undefined
          ? policy.maxDrop[d.key as "accuracy" | "macroF1" | "rocAuc"]
          : policy.maxDrop.classF1;
      rows.push(
        pairedRow(
          d,
          `maxDrop.${d.key}`,
          label,
          maxDrop,
          policy,
          d.key === "accuracy" ? paired.accuracy : undefined,
          paired.evaluation.rows,
        ),
      );
    }
  } else if (baseline && b) {
    for (const [key, label] of scalar) {
      // A metric the production model never reported (e.g. AUC on a 3-class model) has nothing to regress from.
      if (b[key] === undefined) continue;
      rows.push(regressionRow(`maxDrop.${key}`, label, c[key], b[key], policy.maxDrop[key], key));
    }
    for (const cls of Object.keys(b.classes ?? {})) {
      const base = b.classes?.[cls]?.f1;
      if (base === undefined) continue;
      rows.push(
        regressionRow(
          `maxDrop.classF1[${cls}]`,
          `F1 (${cls})`,
          c.classes?.[cls]?.f1,
          base,
          policy.maxDrop.classF1,
          `classes.${cls}.f1`,
        ),
      );
    }
  }

  // Quality metrics no rule looked at (e.g. a first deploy without floors) still belong in the report.
  const covered = new Set(rows.map((r) => r.metric));
  const info = (metric: string, value: number | undefined, base: number | undefined) => {
    if (value === undefined || covered.has(metric)) return;
    const delta = base === undefined ? null : value - base;
    rows.push({
      kind: "info",
      rule: "(no rule)",
      metric,
      candidate: value,
      baseline: base ?? null,
      delta,
      limit: "—",
      status: "pass",
    });
  };
  for (const [key, label] of scalar) info(label, c[key], b?.[key]);
  for (const cls of labels) info(`F1 (${cls})`, c.classes?.[cls]?.f1, b?.classes?.[cls]?.f1);

  const rt = candidate.card.runtime;
  const brt = baseline?.card.runtime;
  rows.push(
    maximumRow(
      "runtime.maxP95Ms",
      "single-row p95 (ms)",
      rt?.singleRowP95Ms,
      brt?.singleRowP95Ms,
      policy.runtime.maxP95Ms,
      "runtime.singleRowP95Ms",
    ),
  );
  const mb = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 1e6);
  rows.push(
    maximumRow(
      "runtime.maxSizeMb",
      "model size (MB)",
      mb(rt?.fileSizeBytes ?? candidate.card.model?.sizeBytes),
      mb(brt?.fileSizeBytes ?? baseline?.card.model?.sizeBytes),
      policy.runtime.maxSizeMB ?? policy.runtime.maxSizeMb,
      "runtime.fileSizeBytes",
    ),
  );
  rows.push(
    maximumRow(
      "runtime.maxLoadMs",
      "load time (ms)",
      rt?.loadMs,
      brt?.loadMs,
      policy.runtime.maxLoadMs,
      "runtime.loadMs",
    ),
  );

  if (policy.goldenParity) rows.push(goldenRow(golden, policy.goldenTolerance));

  const failing = rows.filter((r) => r.status === "fail").map(describeFailure);
  const cm = candidate.card.metrics.confusionMatrix;
  return {
    passed: failing.length === 0,
    candidate: ref(candidate),
    baseline: baseline ? ref(baseline) : null,
    rows,
    failing,
    confusionMatrix: cm ? { labels: cm.labels, matrix: cm.matrix } : null,
    comparison: baseline ? (comparison ?? null) : null,
    policy,
  };
}

/**
 * A regression rule judged on both models' answers to the same rows. `significant` (default): fail
 * only when the drop is statistically significant (McNemar for accuracy, the bootstrap interval lying
 * below 0 otherwise) AND larger than maxDrop; `point`: the point drop alone; `noninferior`: the
 * interval's lower end must stay above −maxDrop.
 */
function pairedRow(
  d: MetricDifference,
  rule: string,
  metric: string,
  maxDrop: number,
  policy: GatePolicy,
  accuracy: Disagreements | undefined,
  rows: number,
): VerdictRow {
  const alpha = 1 - policy.compare.confidence;
  let significant: "drop" | "gain" | null = null;
  if (accuracy) {
    if (accuracy.pValue < alpha && accuracy.candidateOnly !== accuracy.baselineOnly)
      significant = accuracy.baselineOnly > accuracy.candidateOnly ? "drop" : "gain";
  } else if (d.high < 0) significant = "drop";
  else if (d.low > 0) significant = "gain";
  const drop = -d.delta;
  const pct = Math.round(policy.compare.confidence * 1000) / 10;
  let fail: boolean;
  let limit: string;
  switch (policy.compare.rule) {
    case "point":
      fail = drop > maxDrop + EPS;
      limit = `drop ≤ ${fmt(maxDrop)}`;
      break;
    case "noninferior":
      fail = d.low < -maxDrop - EPS;
      limit = `${pct}% CI above −${fmt(maxDrop)}`;
      break;
    default:
      fail = significant === "drop" && drop > maxDrop + EPS;
      limit = `no significant drop > ${fmt(maxDrop)}`;
  }
  return {
    kind: "regression",
    rule,
    metric,
    candidate: d.candidate,
    baseline: d.baseline,
    delta: d.delta,
    limit,
    status: fail ? "fail" : "pass",
    interval: [d.low, d.high],
    ...(accuracy ? { pValue: accuracy.pValue } : {}),
    significant,
    paired: true,
    note: `paired, ${rows} rows`,
  };
}

function ref(subject: GateSubject): ModelRef {
  return {
    name: subject.card.name ?? null,
    version: subject.card.version ?? null,
    label: describeCard(subject.card, subject.source),
    source: subject.source,
  };
}

/** Classes to apply per-class floors to: everything either card knows plus labels named in the policy. */
function classLabels(candidate: GateCard, baseline: GateCard | null, policy: GatePolicy): string[] {
  const set = new Set<string>();
  for (const l of candidate.io?.labels ?? []) set.add(l);
  for (const l of Object.keys(candidate.metrics.classes ?? {})) set.add(l);
  for (const l of Object.keys(baseline?.metrics.classes ?? {})) set.add(l);
  const floor = policy.minimum.classF1;
  if (floor && typeof floor === "object") for (const l of Object.keys(floor)) if (l !== "*") set.add(l);
  return [...set];
}

function missingRow(
  kind: RowKind,
  rule: string,
  metric: string,
  baseline: number | null,
  limit: string,
  path = metric,
): VerdictRow {
  return {
    kind,
    rule,
    metric,
    candidate: null,
    baseline,
    delta: null,
    limit,
    status: "fail",
    note: `candidate model.json has no metrics.${path}`,
  };
}

function minimumRow(
  rule: string,
  metric: string,
  value: number | undefined,
  base: number | undefined,
  floor: number,
  path: string,
): VerdictRow {
  const limit = `≥ ${fmt(floor)}`;
  if (value === undefined) return missingRow("minimum", rule, metric, base ?? null, limit, path);
  return {
    kind: "minimum",
    rule,
    metric,
    candidate: value,
    baseline: base ?? null,
    delta: base === undefined ? null : value - base,
    limit,
    status: value + EPS >= floor ? "pass" : "fail",
  };
}

function regressionRow(
  rule: string,
  metric: string,
  value: number | undefined,
  base: number,
  maxDrop: number,
  path: string,
): VerdictRow {
  const limit = `drop ≤ ${fmt(maxDrop)}`;
  if (value === undefined) return missingRow("regression", rule, metric, base, limit, path);
  const delta = value - base;
  return {
    kind: "regression",
    rule,
    metric,
    candidate: value,
    baseline: base,
    delta,
    limit,
    status: -delta <= maxDrop + EPS ? "pass" : "fail",
    paired: false,
    note: "unpaired: each model's own test split",
  };
}

function maximumRow(
  rule: string,
  metric: string,
  value: number | undefined,
  base: number | undefined,
  max: number,
  path: string,
): VerdictRow {
  const limit = `≤ ${max}`;
  if (value === undefined) {
    return {
      ...missingRow("runtime", rule, metric, base ?? null, limit),
      note: `candidate model.json has no ${path}`,
    };
  }
  return {
    kind: "runtime",
    rule,
    metric,
    candidate: value,
    baseline: base ?? null,
    delta: base === undefined ? null : value - base,
    limit,
    status: value <= max + EPS ? "pass" : "fail",
  };
}

function goldenRow(golden: GoldenResult | undefined, tolerance: number): VerdictRow {
  const base = {
    kind: "golden" as const,
    rule: "goldenParity",
    metric: "golden parity (max |Δp|)",
    baseline: null,
    delta: null,
    limit: `≤ ${tolerance}`,
  };
  if (!golden) return { ...base, candidate: null, status: "fail", note: "golden examples were not checked" };
  if (golden.status === "unavailable")
    return { ...base, candidate: null, status: "fail", note: golden.reason };
  const ok = golden.mismatches === 0;
  return {
    ...base,
    metric: `golden parity (${golden.examples} examples, max |Δp|)`,
    candidate: golden.maxAbsDiff,
    status: ok ? "pass" : "fail",
    ...(ok
      ? {}
      : {
          note: `${golden.mismatches} of ${golden.examples} differ${golden.firstMismatch ? `; ${golden.firstMismatch}` : ""}`,
        }),
  };
}

function describeFailure(row: VerdictRow): string {
  if (row.note && row.candidate === null) return `${row.rule}: ${row.note}`;
  if (row.kind === "golden") return `${row.rule}: ${row.note ?? "golden examples differ"}`;
  if (row.kind === "regression" && row.paired && row.interval) {
    const p = row.pValue === undefined ? "" : `, McNemar p = ${fmtP(row.pValue)}`;
    return `${row.rule}: ${row.metric} ${fmt(row.candidate)} vs production ${fmt(row.baseline)} on the same rows (${row.note}): Δ ${fmtDelta(row.delta)}, interval [${fmtDelta(row.interval[0])}, ${fmtDelta(row.interval[1])}]${p} (rule: ${row.limit})`;
  }
  if (row.kind === "regression") {
    return `${row.rule}: ${row.metric} ${fmt(row.candidate)} vs baseline ${fmt(row.baseline)} dropped ${fmt(-(row.delta ?? 0))} (allowed ${row.limit})`;
  }
  return `${row.rule}: ${row.metric} ${fmtValue(row, row.candidate)} (required ${row.limit})`;
}

/** A row's value as printed: metrics to 4 decimals, runtime figures (ms, MB) to 2. */
export function fmtValue(row: Pick<VerdictRow, "kind">, value: number | null | undefined): string {
  if (row.kind === "runtime" && value !== null && value !== undefined) return value.toFixed(2);
  return fmt(value);
}

export function fmtRowDelta(row: Pick<VerdictRow, "kind" | "delta">): string {
  if (row.kind === "runtime" && row.delta !== null) {
    return `${row.delta > 0 ? "+" : row.delta < 0 ? "−" : "±"}${Math.abs(row.delta).toFixed(2)}`;
  }
  return fmtDelta(row.delta);
}

/** Metrics to 4 decimals, larger figures to 1 — what the tables print. */
export function fmt(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (Math.abs(value) >= 10) return value.toFixed(1);
  if (value !== 0 && Math.abs(value) < 0.001) return value.toExponential(1);
  return value.toFixed(4);
}

export function fmtDelta(value: number | null): string {
  if (value === null) return "—";
  const text = fmt(Math.abs(value));
  if (Math.abs(value) < 5e-5 && Math.abs(value) < 10) return `±${fmt(0)}`;
  return `${value > 0 ? "+" : "−"}${text}`;
}

/** p-values: 3 significant digits, tiny ones in exponent form. */
export function fmtP(p: number): string {
  if (p >= 0.001) return p.toFixed(p >= 0.1 ? 2 : 3);
  return p.toExponential(1);
}

/** A paired row's interval as printed: [−0.0123, +0.0045]. */
export function fmtInterval(row: Pick<VerdictRow, "interval">): string {
  return row.interval ? `[${fmtDelta(row.interval[0])}, ${fmtDelta(row.interval[1])}]` : "—";
}
