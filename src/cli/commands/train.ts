import { type Command, InvalidArgumentError } from "commander";
import { loadTrainSettings } from "../../config/load.js";
import { metricsTextLines } from "../../metrics/render.js";
import { trainBundle } from "../../pipeline/train.js";
import { CHECK_LIMIT_SETTINGS } from "../../settings/validate.js";
import { ExitCode } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";
import { checksTable, runtimeChecks } from "../../validate/validate.js";
import { addSettings } from "../settings.js";

interface TrainFlags {
  config?: string;
  data?: string;
  textColumn?: string;
  labelColumn?: string;
  labels?: string[];
  labelMap?: Record<string, string>;
  dropEmpty?: boolean;
  out?: string;
  name?: string;
  maxSizeMb?: number;
  maxLoadMs?: number;
  maxP95Ms?: number;
  seed?: number;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("train")
    .description("Train a text classifier from a labelled CSV and write an immutable model bundle")
    .option("--config <file>", "modelship.yaml (flags override its train: and validate: sections)")
    .option("--data <csv>", "labelled CSV (default: train.data, else $MODELSHIP_DATA)")
    .option("--text-column <name>", "column with the text (default: text)")
    .option("--label-column <name>", "column with the label (default: airline_sentiment)")
    .option("--labels <a,b>", "keep only these labels; rows with others are dropped", parseList)
    .option("--label-map <from=to,...>", "rename labels before filtering, e.g. pos=positive", parseMap)
    .option("--drop-empty", "drop rows with empty text or label instead of failing")
    .option(
      "--seed <n>",
      "seed of the train/test split and CV folds (overrides train.params.seed; default 42)",
      parseInteger,
    )
    .option("--out <dir>", "directory that receives <name>-<version>/ (default: models)")
    .option("--name <name>", "model name (default: model)");
  addSettings(cmd, CHECK_LIMIT_SETTINGS)
    .option(
      "--json",
      "print one JSON object {bundle, version, metrics, checks, passed}; progress goes to stderr",
    )
    .action(async (flags: TrainFlags) => {
      const { settings, where } = await loadTrainSettings(flags.config, {
        data: flags.data,
        textColumn: flags.textColumn,
        labelColumn: flags.labelColumn,
        labels: flags.labels,
        labelMap: flags.labelMap,
        onEmpty: flags.dropEmpty ? "drop" : undefined,
        out: flags.out,
        name: flags.name,
        limits: { maxSizeMb: flags.maxSizeMb, maxLoadMs: flags.maxLoadMs, maxP95Ms: flags.maxP95Ms },
        ...(flags.seed !== undefined ? { params: { seed: flags.seed } } : {}),
      });
      const reporter = new Reporter("human", flags.json ? process.stderr : process.stdout);
      const result = await trainBundle(settings, reporter, where);
      const checks = runtimeChecks(result.card.runtime, settings.limits);
      const passed = checks.every((c) => c.passed);
      const m = result.card.metrics;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ bundle: result.dir, version: result.card.version, metrics: m, checks, passed })}\n`,
        );
      } else {
        reporter.info(
          [
            "",
            ...metricsTextLines(m),
            "",
            checksTable(checks),
            "",
            `bundle ${result.dir} (version ${result.card.version}; train + export ${(result.trainMs / 1000).toFixed(1)} s)`,
            passed ? "checks passed" : "checks FAILED",
          ].join("\n"),
        );
      }
      if (!passed) process.exitCode = ExitCode.failed;
    });
}

export function parseList(value: string): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) throw new InvalidArgumentError("expected a comma-separated list");
  return items;
}

function parseMap(value: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const pair of parseList(value)) {
    const eq = pair.indexOf("=");
    if (eq <= 0 || eq === pair.length - 1)
      throw new InvalidArgumentError(`expected from=to pairs, got "${pair}"`);
    map[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return map;
}

export function parseInteger(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n)) throw new InvalidArgumentError("expected an integer");
  return n;
}
