import type { Metrics } from "../contracts/card.js";
import { textTable } from "../util/progress.js";

/** Tables shared by the terminal output and the job summary, so both always show the same numbers. */
export interface Table {
  header: string[];
  rows: string[][];
}

const f3 = (x: number) => x.toFixed(3);

/** One row per class plus macro average; accuracy, AUC and CV go in `summaryLines`. */
export function classTable(m: Metrics): Table {
  const rows = Object.entries(m.classes).map(([label, c]) => [
    label,
    f3(c.precision),
    f3(c.recall),
    f3(c.f1),
    String(c.support),
  ]);
  rows.push(["macro avg", "", "", f3(m.macroF1), String(m.testRows)]);
  return { header: ["class", "precision", "recall", "f1", "support"], rows };
}

export function confusionTable(m: Metrics): Table {
  const { labels, matrix } = m.confusionMatrix;
  return {
    header: ["true \\ predicted", ...labels],
    rows: labels.map((l, i) => [l, ...(matrix[i] ?? []).map(String)]),
  };
}

export function summaryLines(m: Metrics): string[] {
  const lines = [
    `accuracy ${f3(m.accuracy)} · macro-F1 ${f3(m.macroF1)}${m.rocAuc !== undefined ? ` · ROC AUC ${f3(m.rocAuc)}` : ""} · ${m.testRows} test rows`,
  ];
  if (m.cv) {
    lines.push(
      `${m.cv.folds}-fold CV on the training part: accuracy ${f3(m.cv.accuracy.mean)} ± ${f3(m.cv.accuracy.std)} · macro-F1 ${f3(m.cv.macroF1.mean)} ± ${f3(m.cv.macroF1.std)}`,
    );
  }
  return lines;
}

export function markdownTable(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `| ${t.header.map(esc).join(" | ")} |`,
    `| ${t.header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...t.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

/** The terminal's metrics block (summary, per-class table, confusion matrix) of train, validate and package. */
export function metricsTextLines(m: Metrics): string[] {
  const t = classTable(m);
  const cm = confusionTable(m);
  return [...summaryLines(m), "", textTable(t.header, t.rows), "", textTable(cm.header, cm.rows)];
}
