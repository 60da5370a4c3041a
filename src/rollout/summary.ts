import { mdTable, mermaidXyChart } from "../github/markdown.js";
import { flipMatrixMarkdown, type ShadowAnswer } from "../shadow/compare.js";
import type { DeployOutcome } from "./deploy.js";
import { type ShadowFigures, shadowDetail } from "./deploy.js";
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
  if (o.shadow) lines.push(shadowSection(o.shadow), "");
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

const verdictMark = (v: string) => (v === "pass" ? "✅ pass" : v === "fail" ? "❌ fail" : "⚠️ inconclusive");

/**
 * Live request text as inert markdown: no HTML, link, image, mention or emphasis can come out of what
 * a user sent (backslashes before markdown punctuation, then entities for `<>&@`), on one line. For
 * table cells: mdTable escapes `|` itself.
 */
export function mdLiteral(text: string): string {
  return text
    .replace(/[\r\n\t]+/g, " ")
    .replace(/[\\`*_{}[\]()#+\-.!~]/g, (c) => `\\${c}`)
    .replace(/[&<>@]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An answer as "label (p)" — the probability of the label it gave, when the answer carries it. */
function answerText(a: ShadowAnswer): string {
  const p = a.probabilities[a.label];
  return `${mdLiteral(a.label)}${p === undefined ? "" : ` (${p.toFixed(2)})`}`;
}

/** The shadow step in the job summary: verdict and figures, checks, flip matrix, disagreeing requests. */
export function shadowSection(r: NonNullable<DeployOutcome["shadow"]>): string {
  const out = [
    `### Shadow step: ${verdictMark(r.verdict)}`,
    "",
    `${shadowDetail(r)} — ${r.attempts} requests mirrored over ${(r.durationMs / 1000).toFixed(0)} s${r.extensions > 0 ? ` (extended ${r.extensions}×)` : ""}, users got only the stable answers.`,
    "",
    mdTable(
      ["check", "value", "threshold", "verdict"],
      r.checks.map((c) => [
        c.message,
        c.value === null ? "–" : Number(c.value.toFixed(4)),
        c.threshold,
        c.status,
      ]),
      ["l", "r", "r", "l"],
    ),
    "",
    `Latency on the mirrored requests: candidate p50 ${ms(r.candidateP50Ms)}, p95 ${ms(r.candidateP95Ms)}; stable p95 ${ms(r.stableP95Ms)}.`,
    "",
    "Class flips (rows: stable's label, columns: the candidate's):",
    "",
    flipMatrixMarkdown(r.flips),
  ];
  const differ = r.pairs - r.agreements;
  if (r.inputsHidden) {
    if (differ > 0)
      out.push(
        "",
        `_${differ} requests got different answers; their texts are not shown: the prediction log hashes text (MODELSHIP_PREDICTION_LOG_HASH_TEXT)._`,
      );
  } else if (r.examples.length > 0) {
    out.push(
      "",
      `${r.examples.length} of the ${differ} requests that got different answers (texts truncated):`,
      "",
      mdTable(
        ["request", "stable answered", "candidate answered"],
        r.examples.map((e) => [mdLiteral(e.input), answerText(e.stable), answerText(e.candidate)]),
      ),
    );
  }
  return out.join("\n");
}

/** GitHub keeps at most 140 characters of a Deployment status description. */
const within140 = (text: string) => (text.length <= 140 ? text : `${text.slice(0, 139)}…`);

const ms = (x: number | null) => (x === null ? "–" : `${Math.round(x)} ms`);

/**
 * The GitHub Deployment status description (≤ 140 characters): the outcome, and the shadow verdict
 * with its figures when the rollout had a shadow step.
 */
export function deploymentDescription(o: DeployOutcome): string {
  const r = o.shadow;
  if (o.status === "aborted" && (!r || r.verdict === "pass"))
    return within140(`${o.version} aborted${r ? " after shadow pass" : ""}: ${o.reason ?? "see the run"}`);
  const head =
    o.status === "promoted"
      ? o.edge.failed > 0
        ? `${o.version} is live, but ${o.edge.failed} of ${o.edge.requests} requests failed`
        : `${o.version} is live`
      : o.status === "aborted"
        ? `${o.version} aborted`
        : `${o.version} already live`;
  if (!r) return within140(head);
  return within140(`${head}; ${shadowDeploymentText(r)}`);
}

/** The shadow verdict in a Deployment description's words ("shadow pass: 99.3% agree […] …"). */
function shadowDeploymentText(r: ShadowFigures): string {
  const p = (x: number) => Number((x * 100).toFixed(1));
  const agreement =
    r.agreement === null || r.agreementCi === null
      ? `${r.pairs} pairs`
      : `${p(r.agreement)}% agree [${p(r.agreementCi.low)}–${p(r.agreementCi.high)}] (${r.pairs} pairs)`;
  const delta =
    r.meanAbsDelta === null
      ? ""
      : `, |Δp| mean ${r.meanAbsDelta.toFixed(3)} p95 ${(r.p95AbsDelta ?? 0).toFixed(3)}`;
  return `shadow ${r.verdict}: ${agreement}${delta}, candidate ${r.candidateErrors} errors p95 ${ms(r.candidateP95Ms)}`;
}

/**
 * The `in_progress` description the canary-deploy action posts as soon as the shadow step is judged
 * (from the deploy's `shadow` event), so the Deployment carries the verdict while the canary runs.
 */
export function shadowProgressDescription(version: string, r: ShadowFigures): string {
  return within140(
    `${version} ${shadowDeploymentText(r)}${r.verdict === "pass" ? "; canary steps next" : "; aborting"}`,
  );
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
