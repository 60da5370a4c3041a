/**
 * Markdown building blocks for job summaries and PR comments. Charts are mermaid blocks GitHub renders
 * itself — no third-party image host, nothing leaves the repository.
 */

/** Escapes a value for a GitHub-flavoured markdown table cell. */
export function mdCell(value: string | number): string {
  return String(value).replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/** `align`: one of "l" | "r" | "c" per column (default left). Cells are escaped. */
export function mdTable(
  header: string[],
  rows: (string | number)[][],
  align: ("l" | "r" | "c")[] = [],
): string {
  const sep = header.map((_, i) => ({ l: "---", r: "--:", c: ":-:" })[align[i] ?? "l"]);
  const line = (cells: (string | number)[]) => `| ${cells.map(mdCell).join(" | ")} |`;
  return [line(header), `|${sep.join("|")}|`, ...rows.map(line)].join("\n");
}

/** Confusion matrix (rows = true label, columns = predicted), diagonal in bold, inside a <details>. */
export function mdConfusionMatrix(labels: string[], matrix: number[][], summary: string): string {
  const rows = matrix.map((row, i) => [
    labels[i] ?? "?",
    ...row.map((v, j) => (i === j ? `**${v}**` : String(v))),
  ]);
  const table = mdTable(["true \\ predicted", ...labels], rows, ["l", ...labels.map(() => "r" as const)]);
  return `<details><summary>${summary}</summary>\n\n${table}\n\n</details>`;
}

export interface XyChart {
  title: string;
  x: string[];
  yLabel: string;
  yMin: number;
  yMax: number;
  bars?: number[][];
  lines?: number[][];
}

/** A mermaid `xychart-beta` block (bars and/or lines over categorical x). */
export function mermaidXyChart(chart: XyChart): string {
  const quote = (s: string) => JSON.stringify(s.replace(/"/g, "'"));
  const num = (v: number) => (Number.isFinite(v) ? Number(v.toFixed(4)).toString() : "0");
  const lines = [
    "```mermaid",
    "xychart-beta",
    `  title ${quote(chart.title)}`,
    `  x-axis [${chart.x.map(quote).join(", ")}]`,
    `  y-axis ${quote(chart.yLabel)} ${num(chart.yMin)} --> ${num(chart.yMax)}`,
    ...(chart.bars ?? []).map((s) => `  bar [${s.map(num).join(", ")}]`),
    ...(chart.lines ?? []).map((s) => `  line [${s.map(num).join(", ")}]`),
    "```",
  ];
  return lines.join("\n");
}
