import type { Command } from "commander";
import { runDriftCheck } from "../../drift/check.js";
import { pc } from "../../util/colors.js";
import { ExitCode } from "../../util/errors.js";
import { textTable } from "../../util/progress.js";

interface DriftFlags {
  url?: string;
  log?: string;
  model?: string;
  policy?: string;
  stateDir?: string;
  state?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("drift")
    .description(
      "Check live drift (GET <url>/drift) or a prediction log against the drift policy; exit 1 when drift is confirmed (sustained over N checks)",
    )
    .option("--url <url>", "edge or server base URL (its /drift window)")
    .option("--log <file>", "prediction log (JSONL written with MODELSHIP_PREDICTION_LOG)")
    .option("--model <dir>", "bundle that served the logged predictions (with --log)")
    .option("--policy <file>", "drift policy file, or a modelship.yaml with a drift: section")
    .option(
      "--state-dir <dir>",
      "where the consecutive-check counter lives (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root, else ~/.modelship)",
    )
    .option("--no-state", "one-off check: do not read or update the counter")
    .option("--json", "one JSON document")
    .action(async (flags: DriftFlags) => {
      const check = await runDriftCheck({ ...flags, keepState: flags.state !== false });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(check, null, 2)}\n`);
      } else {
        const r = check.report;
        const out = [
          `${r.model.name} ${r.model.version}: window ${r.observed}/${r.windowSize}${r.full ? "" : " (not full)"}`,
          textTable(
            ["STATISTIC", "VALUE", "THRESHOLD", ""],
            r.statistics.map((s) => [
              s.name,
              s.value === null ? "-" : s.value.toFixed(4),
              String(s.threshold),
              s.over ? pc.red("over") : pc.green("ok"),
            ]),
          ),
          check.confirmed
            ? pc.red(`drift confirmed (${check.consecutive} consecutive checks, policy ${check.sustain})`)
            : r.drift
              ? pc.yellow(`drift in this window (${check.consecutive}/${check.sustain} checks to confirm)`)
              : pc.green("no drift"),
        ];
        process.stdout.write(`${out.join("\n")}\n`);
      }
      if (check.confirmed) process.exitCode = ExitCode.failed;
    });
}
