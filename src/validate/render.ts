import type { Metrics } from "../contracts/card.js";
import { classTable, confusionTable, markdownTable, summaryLines } from "../metrics/render.js";
import type { Check } from "./validate.js";

/** Job-summary markdown: verdict, metrics, confusion matrix, checks (same tables as the terminal). */
export function reportMarkdown(opts: {
  title: string;
  metrics: Metrics;
  checks: readonly Check[];
  facts?: string[];
}): string {
  const passed = opts.checks.every((c) => c.passed);
  return [
    `## ${passed ? "✅" : "❌"} ${opts.title}`,
    "",
    ...(opts.facts ?? []).map((f) => `- ${f}`),
    ...(opts.facts?.length ? [""] : []),
    ...summaryLines(opts.metrics).map((l) => `${l}  `),
    "",
    "### Metrics (test split)",
    "",
    markdownTable(classTable(opts.metrics)),
    "",
    "### Confusion matrix",
    "",
    markdownTable(confusionTable(opts.metrics)),
    "",
    "### Checks",
    "",
    markdownTable({
      header: ["check", "result", "measured"],
      rows: opts.checks.map((c) => [c.name, c.passed ? "✅ pass" : "❌ fail", c.detail]),
    }),
    "",
  ].join("\n");
}
