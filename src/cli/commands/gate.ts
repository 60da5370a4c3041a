import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { loadGatePolicy } from "../../config/load.js";
import { resolveBaseline } from "../../gate/baseline.js";
import { gateCandidate, verdictJson } from "../../gate/gate.js";
import { renderMarkdown, renderText } from "../../gate/render.js";
import { ExitCode } from "../../util/errors.js";

interface GateFlags {
  candidate: string;
  baseline?: string;
  baselineFromHost?: boolean;
  baselineRelease?: string;
  stateDir?: string;
  policy?: string;
  markdown?: string;
  json?: boolean;
  evalData?: string;
  dataset?: string;
}

export function register(program: Command): void {
  program
    .command("gate")
    .description(
      "Judge a candidate bundle against the gate policy and the production model; exit 1 when a rule fails",
    )
    .requiredOption("--candidate <bundle>", "candidate bundle directory (or its model.json)")
    .option(
      "--baseline <path>",
      "production model: bundle dir, model.json, or saved `modelship status --json` output",
    )
    .option("--baseline-from-host", "production model = the stable version in this host's ledger")
    .option("--state-dir <dir>", "ledger state dir (with --baseline-from-host)")
    .option(
      "--baseline-release <tag>",
      "production model.json from this GitHub release (needs GITHUB_TOKEN, GITHUB_REPOSITORY)",
    )
    .option(
      "--policy <file>",
      "gate policy file, or a modelship.yaml with a gate: section (default: ./modelship.yaml if present)",
    )
    .option(
      "--eval-data <csv>",
      "score both models on every labelled row of this CSV (default: the candidate's held-out split)",
    )
    .option(
      "--dataset <csv>",
      "the candidate's training CSV, when the path in its model.json does not resolve here (same bytes)",
    )
    .option("--markdown <file>", "also write the markdown report (PR comment / job summary) to this file")
    .option("--json", "print the verdict as one JSON document")
    .addHelpText(
      "after",
      "\nWith both model.onnx files at hand the gate scores candidate and production on the same rows (paired:\nintervals, McNemar's test, disagreeing rows); with only a production card it compares the recorded\nmetrics and marks the comparison unpaired. Without a baseline (first deploy) only the absolute rules apply.\nExit: 0 passed · 1 a rule failed (each named) · 2 bad input · 3 ledger/GitHub unreachable · 4 a rollout is in progress",
    )
    .action(async (flags: GateFlags) => {
      const policyPath = flags.policy ?? (existsSync("modelship.yaml") ? "modelship.yaml" : undefined);
      const policy = await loadGatePolicy(policyPath);
      const baseline = await resolveBaseline(flags);
      const outcome = await gateCandidate(flags.candidate, baseline, policy, {
        evalData: flags.evalData,
        dataset: flags.dataset,
      });
      const ctx = { baselineNote: outcome.baselineNote };
      if (flags.markdown) await writeFile(flags.markdown, renderMarkdown(outcome.verdict, ctx));
      if (flags.json) process.stdout.write(`${JSON.stringify(verdictJson(outcome), null, 2)}\n`);
      else process.stdout.write(`${renderText(outcome.verdict, ctx)}\n`);
      if (!outcome.verdict.passed) {
        if (flags.json)
          process.stderr.write(`modelship: gate failed: ${outcome.verdict.failing.join("; ")}\n`);
        process.exitCode = ExitCode.failed;
      } else {
        process.exitCode = ExitCode.ok;
      }
    });
}
