import { mdTable, mermaidXyChart } from "../github/markdown.js";
import { flipMatrixMarkdown } from "../shadow/compare.js";
import type { DeployOutcome } from "./deploy.js";
import { shadowDetail } from "./deploy.js";
import type { RollbackOutcome } from "./rollback.js";

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** Job summary for a canary deploy: verdict, timeline table, and a mermaid chart of weight and error rate. */
export function deploySummaryMarkdown(o: DeployOutcome): string {
  const head =
    o.status === "promoted"
      ? `## ✅ ${o.version} deployed${o.previous ? ` (replacing ${o.previous})` : " (first deploy)"}`
      : o.status === "aborted"
        ? `## ❌ Canary ${o.version} aborted`
        : `## ${o.version} was already serving`;
  const lines = [head, ""];
  if (o.reason) lines.push(`**Reason:** ${o.reason}`, "");
  lines.push(
    o.edge.failed === 0
      ? `**Zero requests dropped** — ${o.edge.requests} requests through the edge (${o.edge.url}) during the rollout.`
      : `**${o.edge.failed} of ${o.edge.requests} requests failed** at the edge (${o.edge.url}) during the rollout.`,
    "",
  );
  if (o.shadow) {
    const r = o.shadow;
    lines.push(
      `### Shadow step: ${r.verdict === "pass" ? "✅ pass" : r.verdict === "fail" ? "❌ fail" : "⚠️ inconclusive"}`,
      "",
      `${shadowDetail(r)} — ${r.attempts} requests mirrored over ${(r.durationMs / 1000).toFixed(0)} s, users got only the stable answers.`,
      "",
      "Class flips (rows: stable's label, columns: the candidate's):",
      "",
      flipMatrixMarkdown(r.flips),
      "",
    );
    if (r.examples.length) {
      const cut = (t: string) => t.replace(/[|\n\r]/g, " ");
      lines.push(
        mdTable(
          ["request", "stable", "candidate"],
          r.examples.map((e) => [cut(e.input), e.stable.label, e.candidate.label]),
        ),
        "",
      );
    }
  }
  if (o.timeline.length) {
    lines.push(
      mdTable(
        ["step", "canary weight", "canary requests", "errors", "error rate", "verdict", "figures"],
        o.timeline.map((t) => [
          t.label,
          `${t.weight}%`,
          t.canaryRequests,
          t.canaryErrors,
          pct(t.errorRate),
          t.verdict ?? (t.weight === 100 ? "promoted" : ""),
          t.summary ?? "",
        ]),
        ["l", "r", "r", "r", "r", "l", "l"],
      ),
      "",
      mermaidXyChart({
        title: "Canary weight (bars, %) and error rate (line, %) per step",
        x: o.timeline.map((t) => t.label),
        yLabel: "percent",
        yMin: 0,
        yMax: 100,
        bars: [o.timeline.map((t) => t.weight)],
        lines: [o.timeline.map((t) => t.errorRate * 100)],
      }),
      "",
    );
  }
  lines.push(`_Took ${(o.durationMs / 1000).toFixed(1)} s._`);
  if (o.repaired.length) lines.push("", `Repaired first: ${o.repaired.join("; ")}`);
  return `${lines.join("\n")}\n`;
}

export function rollbackSummaryMarkdown(o: RollbackOutcome): string {
  return `${[
    `## ↩️ Rolled back to ${o.version} (from ${o.from})`,
    "",
    mdTable(
      ["", ""],
      [
        [
          "mode",
          o.mode === "warm"
            ? "warm standby (weight flip)"
            : "cold (container started from the ledger's image)",
        ],
        ["switch", `${Math.round(o.switchMs)} ms`],
        ["traffic restored after", `${(o.restoredMs / 1000).toFixed(1)} s`],
        ["total (incl. drain)", `${(o.totalMs / 1000).toFixed(1)} s`],
        ["by", o.by],
        ["reason", o.reason],
        ["edge", `${o.edge.requests} requests, ${o.edge.failed} failed`],
      ],
    ),
  ].join("\n")}\n`;
}
