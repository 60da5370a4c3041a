import { mdCell as cell, mdConfusionMatrix, mermaidXyChart } from "../github/markdown.js";
import { textTable } from "../util/progress.js";
import { fmtRowDelta, fmtValue, type Verdict } from "./verdict.js";

/** Hidden marker that identifies the sticky PR comment (one per PR, updated in place). */
export const GATE_COMMENT_MARKER = "<!-- modelship:gate -->";

export interface RenderContext {
  /** How the baseline was found, or why there is none. */
  baselineNote: string;
  /** Link to the workflow run, when known. */
  runUrl?: string;
  /** Extra markdown for the report (e.g. the image smoke-test result from the same workflow). */
  extra?: string;
}

const mark = (ok: boolean) => (ok ? "✅" : "❌");

/** Job summary and PR comment body: verdict table, failing rules, confusion matrix, a mermaid chart. */
export function renderMarkdown(verdict: Verdict, ctx: RenderContext): string {
  const out: string[] = [GATE_COMMENT_MARKER];
  const title = verdict.passed ? "Model gate passed" : "Model gate failed";
  out.push(`## ${mark(verdict.passed)} ${title}: \`${cell(verdict.candidate.label)}\``, "");
  out.push(`> ${cell(ctx.baselineNote)}`, "");
  out.push("| | Metric | Candidate | Baseline | Δ | Rule |", "|:-:|---|--:|--:|--:|---|");
  for (const r of verdict.rows) {
    const candidate = r.candidate === null ? `**missing**` : fmtValue(r, r.candidate);
    const rule =
      r.kind === "info"
        ? "no rule"
        : `${r.limit} <sub>\`${cell(r.rule)}\`</sub>${r.note ? `<br>${cell(r.note)}` : ""}`;
    out.push(
      `| ${r.kind === "info" ? "·" : mark(r.status === "pass")} | ${cell(r.metric)} | ${candidate} | ${fmtValue(r, r.baseline)} | ${fmtRowDelta(r)} | ${rule} |`,
    );
  }
  out.push("");
  if (verdict.failing.length > 0) {
    out.push(`**${verdict.failing.length} failing rule${verdict.failing.length === 1 ? "" : "s"}:**`, "");
    for (const f of verdict.failing) out.push(`- ${cell(f)}`);
    out.push("");
  }
  const cm = verdict.confusionMatrix;
  if (cm && cm.labels.length > 0) {
    out.push(
      mdConfusionMatrix(
        cm.labels,
        cm.matrix,
        "Confusion matrix (candidate, test split; rows = true, columns = predicted)",
      ),
      "",
    );
  }
  const chart = renderChart(verdict);
  if (chart) out.push(chart, "");
  if (ctx.extra?.trim()) out.push(ctx.extra.trim(), "");
  if (ctx.runUrl) out.push(`<sub>[workflow run](${ctx.runUrl}) · modelship gate</sub>`);
  return `${out.join("\n").trimEnd()}\n`;
}

/** Quality metrics as a mermaid bar chart GitHub renders itself (no image host): bars candidate, line baseline. */
export function renderChart(verdict: Verdict): string | null {
  const points = new Map<string, { c: number | null; b: number | null }>();
  for (const r of verdict.rows) {
    if (r.kind !== "minimum" && r.kind !== "regression" && r.kind !== "info") continue;
    const name = r.metric;
    const prev = points.get(name);
    points.set(name, { c: r.candidate ?? prev?.c ?? null, b: r.baseline ?? prev?.b ?? null });
  }
  const entries = [...points.entries()].filter(([, v]) => v.c !== null);
  if (entries.length === 0) return null;
  const values = entries.flatMap(([, v]) => [v.c, v.b]).filter((v): v is number => v !== null);
  const floor = Math.max(0, Math.floor((Math.min(...values) - 0.05) * 20) / 20);
  const withBaseline = verdict.baseline !== null && entries.some(([, v]) => v.b !== null);
  return mermaidXyChart({
    title: verdict.baseline ? "Candidate (bars) vs production (line)" : "Candidate (first deploy)",
    x: entries.map(([k]) => k),
    yLabel: "score",
    yMin: floor,
    yMax: 1,
    bars: [entries.map(([, v]) => v.c ?? floor)],
    lines: withBaseline ? [entries.map(([, v]) => v.b ?? floor)] : [],
  });
}

/** Terminal form: aligned table, the baseline note and the failing rules. */
export function renderText(verdict: Verdict, ctx: RenderContext): string {
  const rows = verdict.rows.map((r) => [
    r.kind === "info" ? "·" : r.status === "pass" ? "✓" : "✗",
    r.metric,
    r.candidate === null ? "missing" : fmtValue(r, r.candidate),
    fmtValue(r, r.baseline),
    fmtRowDelta(r),
    r.kind === "info" ? "no rule" : `${r.limit}  (${r.rule})`,
  ]);
  const lines = [
    `Gate for ${verdict.candidate.label}`,
    ctx.baselineNote,
    "",
    textTable(["", "metric", "candidate", "baseline", "Δ", "rule"], rows),
    "",
  ];
  if (verdict.passed) lines.push("Gate passed.");
  else
    lines.push(
      `Gate failed — ${verdict.failing.length} failing rule(s):`,
      ...verdict.failing.map((f) => `  ✗ ${f}`),
    );
  return lines.join("\n");
}
