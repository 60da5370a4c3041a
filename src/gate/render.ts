import { mdCell as cell, mdConfusionMatrix, mdTable, mermaidXyChart } from "../github/markdown.js";
import { textTable } from "../util/progress.js";
import type { PairedComparison } from "./paired.js";
import { fmtInterval, fmtP, fmtRowDelta, fmtValue, type Verdict, type VerdictRow } from "./verdict.js";

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
  const comparison = verdict.comparison;
  if (comparison?.mode === "paired") {
    const e = comparison.evaluation;
    out.push(
      `> **Paired:** both models scored on the same ${e.rows.toLocaleString("en-US")} rows (${cell(e.source)}); Δ = candidate − production with its ${pct(verdict)} interval (paired bootstrap, ${comparison.bootstrap.resamples} resamples, seed ${comparison.bootstrap.seed}).`,
      "",
    );
  } else if (comparison?.mode === "unpaired") {
    out.push(
      `> ⚠️ **Unpaired:** ${cell(comparison.reason)}. The Δ below compares each model's metrics on its *own* test split — not the same rows, no interval.`,
      "",
    );
  }
  out.push("| | Metric | Candidate | Baseline | Δ | Rule |", "|:-:|---|--:|--:|--:|---|");
  for (const r of verdict.rows) {
    const candidate = r.candidate === null ? `**missing**` : fmtValue(r, r.candidate);
    const rule =
      r.kind === "info"
        ? "no rule"
        : `${r.limit} <sub>\`${cell(r.rule)}\`</sub>${r.note ? `<br>${cell(r.note)}` : ""}`;
    out.push(
      `| ${r.kind === "info" ? "·" : mark(r.status === "pass")} | ${cell(r.metric)} | ${candidate} | ${fmtValue(r, r.baseline)} | ${mdDelta(r)} | ${rule} |`,
    );
  }
  out.push("");
  if (verdict.failing.length > 0) {
    out.push(`**${verdict.failing.length} failing rule${verdict.failing.length === 1 ? "" : "s"}:**`, "");
    for (const f of verdict.failing) out.push(`- ${cell(f)}`);
    out.push("");
  }
  if (comparison?.mode === "paired") out.push(renderPairedMarkdown(comparison), "");
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

function pct(verdict: Verdict): string {
  return `${Math.round(verdict.policy.compare.confidence * 1000) / 10} %`;
}

/** Δ cell: the difference, and for paired rows its interval and (accuracy) McNemar's p underneath. */
function mdDelta(r: VerdictRow): string {
  if (!r.interval) return fmtRowDelta(r);
  const sig = r.significant ? ` · **significant ${r.significant}**` : "";
  const p = r.pValue === undefined ? "" : ` · p ${fmtP(r.pValue)}`;
  return `${fmtRowDelta(r)}<br><sub>${fmtInterval(r)}${p}${sig}</sub>`;
}

/** Where the two models differ: disagreement counts, McNemar, per-class flips, example rows. */
export function renderPairedMarkdown(c: PairedComparison): string {
  const a = c.accuracy;
  const out: string[] = [
    `### Where the models differ (${c.evaluation.rows.toLocaleString("en-US")} shared rows)`,
    "",
  ];
  out.push(
    mdTable(
      ["", "production right", "production wrong"],
      [
        ["**candidate right**", a.bothRight, `**${a.candidateOnly}** (only the candidate)`],
        ["**candidate wrong**", `**${a.baselineOnly}** (only production)`, a.bothWrong],
      ],
      ["l", "r", "r"],
    ),
    "",
    `McNemar's exact test on the ${a.candidateOnly + a.baselineOnly} rows exactly one model got right: p = ${fmtP(a.pValue)}.`,
    "",
  );
  if (c.flips.some((f) => f.candidateOnly + f.baselineOnly > 0)) {
    out.push(
      mdTable(
        ["true class", "only candidate right", "only production right"],
        c.flips.map((f) => [f.label, f.candidateOnly, f.baselineOnly]),
        ["l", "r", "r"],
      ),
      "",
    );
  }
  if (c.transitions.length > 0) {
    out.push(
      `Changed answers (production → candidate): ${c.transitions.map((t) => `${cell(t.from)} → ${cell(t.to)} ${t.count}`).join(" · ")}`,
      "",
    );
  }
  if (c.examples.length > 0) {
    out.push(
      `<details><summary>${c.examples.length} rows where they disagree (candidate's mistakes first)</summary>`,
      "",
      mdTable(
        ["line", "input", "true", "candidate", "production"],
        c.examples.map((x) => [
          x.line,
          x.input,
          x.truth,
          `${x.candidate.label} (${x.candidate.probability.toFixed(2)})`,
          `${x.baseline.label} (${x.baseline.probability.toFixed(2)})`,
        ]),
        ["r", "l", "l", "l", "l"],
      ),
      "",
      "</details>",
      "",
    );
  }
  const notes = c.evaluation.notes;
  if (notes.length > 0) out.push(...notes.map((n) => `- ${cell(n)}`), "");
  return out.join("\n").trimEnd();
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
    r.interval ? `${fmtInterval(r)}${r.pValue === undefined ? "" : ` p ${fmtP(r.pValue)}`}` : "",
    r.kind === "info" ? "no rule" : `${r.limit}  (${r.rule})`,
  ]);
  const c = verdict.comparison;
  const lines = [`Gate for ${verdict.candidate.label}`, ctx.baselineNote];
  if (c?.mode === "paired") {
    lines.push(
      `Paired: both models on the same ${c.evaluation.rows} rows (${c.evaluation.source}); interval = ${pct(verdict)} paired bootstrap (${c.bootstrap.resamples} resamples, seed ${c.bootstrap.seed}).`,
    );
  } else if (c?.mode === "unpaired") {
    lines.push(`Unpaired: ${c.reason}; Δ compares each model's own test split.`);
  }
  lines.push("", textTable(["", "metric", "candidate", "baseline", "Δ", "interval", "rule"], rows), "");
  if (c?.mode === "paired") {
    const a = c.accuracy;
    lines.push(
      `Only the candidate right: ${a.candidateOnly} rows · only production right: ${a.baselineOnly} (McNemar p = ${fmtP(a.pValue)}) · per true class: ${c.flips.map((f) => `${f.label} +${f.candidateOnly}/−${f.baselineOnly}`).join(", ")}`,
    );
    if (c.transitions.length > 0)
      lines.push(`Changed answers: ${c.transitions.map((t) => `${t.from} → ${t.to} ${t.count}`).join(", ")}`);
    for (const x of c.examples) {
      lines.push(
        `  line ${x.line}: ${x.input}  [true ${x.truth}; candidate ${x.candidate.label} ${x.candidate.probability.toFixed(2)}; production ${x.baseline.label} ${x.baseline.probability.toFixed(2)}]`,
      );
    }
    for (const n of c.evaluation.notes) lines.push(`  note: ${n}`);
    lines.push("");
  }
  if (verdict.passed) lines.push("Gate passed.");
  else
    lines.push(
      `Gate failed — ${verdict.failing.length} failing rule(s):`,
      ...verdict.failing.map((f) => `  ✗ ${f}`),
    );
  return lines.join("\n");
}
