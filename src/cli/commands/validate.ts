import type { Command } from "commander";
import { loadConfig } from "../../config/load.js";
import { type CheckLimits, DEFAULT_LIMITS } from "../../config/train.js";
import { metricsTextLines } from "../../metrics/render.js";
import { CHECK_LIMIT_SETTINGS } from "../../settings/validate.js";
import { ExitCode } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";
import { checksTable, validateModel } from "../../validate/validate.js";
import { addSettings } from "../settings.js";
import { parseList } from "./train.js";

interface ValidateFlags {
  model: string;
  data: string;
  labelColumn?: string;
  textColumn?: string;
  featureColumns?: string[];
  inputName?: string;
  labels?: string[];
  dropEmpty?: boolean;
  config?: string;
  maxSizeMb?: number;
  maxLoadMs?: number;
  maxP95Ms?: number;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("validate")
    .description(
      "Evaluate any ONNX classifier (text or tabular) on a labelled CSV and check size, load time, latency",
    )
    .requiredOption("--model <dir|model.onnx>", "a model bundle directory or a bare .onnx file")
    .requiredOption("--data <csv>", "labelled CSV")
    .option("--label-column <name>", "column with the true label (default for bundles: the training column)")
    .option("--text-column <name>", "text models: column fed to the string input")
    .option(
      "--feature-columns <a,b,c>",
      "tabular models: columns fed, in order, to the float input",
      parseList,
    )
    .option("--input-name <name>", "model input to feed (when the model has several)")
    .option(
      "--labels <a,b>",
      "class labels in the model's probability-column order (default: sorted data labels)",
      parseList,
    )
    .option("--drop-empty", "drop rows with empty text or label instead of failing")
    .option("--config <file>", "modelship.yaml (its validate: section sets the limits)");
  addSettings(cmd, CHECK_LIMIT_SETTINGS)
    .option("--json", "print one JSON object (the report); progress goes to stderr")
    .action(async (flags: ValidateFlags) => {
      const loaded = await loadConfig(flags.config);
      const limits: CheckLimits = { ...DEFAULT_LIMITS, ...(loaded.config.validate ?? {}) };
      if (flags.maxSizeMb !== undefined) limits.maxSizeMb = flags.maxSizeMb;
      if (flags.maxLoadMs !== undefined) limits.maxLoadMs = flags.maxLoadMs;
      if (flags.maxP95Ms !== undefined) limits.maxP95Ms = flags.maxP95Ms;
      const reporter = new Reporter("human", flags.json ? process.stderr : process.stdout);
      const report = await reporter.step(
        "validate",
        async (update) =>
          validateModel({
            model: flags.model,
            data: flags.data,
            labelColumn: flags.labelColumn,
            textColumn: flags.textColumn,
            featureColumns: flags.featureColumns,
            inputName: flags.inputName,
            labels: flags.labels,
            onEmpty: flags.dropEmpty ? "drop" : "error",
            limits,
            onStage: (s) => update(s),
          }),
        (r) => `${r.task}, input '${r.input}', ${r.data.rows} rows, classes ${r.labels.join(", ")}`,
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        reporter.info(
          [
            "",
            ...metricsTextLines(report.metrics),
            "",
            checksTable(report.checks),
            "",
            report.passed ? "validation passed" : "validation FAILED",
          ].join("\n"),
        );
      }
      if (!report.passed) process.exitCode = ExitCode.failed;
    });
}
