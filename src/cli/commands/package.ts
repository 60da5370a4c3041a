import { type Command, InvalidArgumentError } from "commander";
import { loadPackageSettings } from "../../config/load.js";
import { metricsTextLines } from "../../metrics/render.js";
import { packageBundle } from "../../package/package.js";
import { Reporter } from "../../util/progress.js";
import { parseList } from "./train.js";

interface PackageFlags {
  config?: string;
  model?: string;
  data?: string;
  labelColumn?: string;
  textColumn?: string;
  featureColumns?: string[];
  labels?: string[];
  scores?: "probabilities" | "logits";
  inputName?: string;
  reference?: string;
  dropEmpty?: boolean;
  out?: string;
  name?: string;
  json?: boolean;
}

function parseScores(value: string): "probabilities" | "logits" {
  if (value !== "probabilities" && value !== "logits")
    throw new InvalidArgumentError('expected "probabilities" or "logits"');
  return value;
}

export function register(program: Command): void {
  program
    .command("package")
    .description(
      "Turn an ONNX classifier trained elsewhere (skl2onnx, PyTorch) + a labelled evaluation CSV into an immutable model bundle",
    )
    .option("--config <file>", "modelship.yaml (flags override its package: section)")
    .option("--model <onnx>", "the exported ONNX file")
    .option("--data <csv>", "labelled evaluation CSV (rows the model never trained on)")
    .option("--label-column <name>", "column with the true label (default: the last column)")
    .option("--text-column <name>", "text models: column with the text (default: text)")
    .option(
      "--feature-columns <a,b>",
      "tabular models: feature columns in input order (default: every column but the label)",
      parseList,
    )
    .option("--labels <a,b>", "classes in probability-column order (graphs without class labels)", parseList)
    .option(
      "--scores <kind>",
      "probabilities | logits (default: detected; logits get a Softmax)",
      parseScores,
    )
    .option("--input-name <name>", "input to feed when the graph has several")
    .option(
      "--reference <csv>",
      "data for the reference distributions, e.g. the training set (default: --data)",
    )
    .option("--drop-empty", "drop rows with an empty label instead of failing")
    .option("--out <dir>", "directory that receives <name>-<version>/ (default: models)")
    .option("--name <name>", "model name (default: model)")
    .option(
      "--json",
      "print one JSON object {bundle, version, metrics, parity, transforms}; progress to stderr",
    )
    .action(async (flags: PackageFlags) => {
      const settings = await loadPackageSettings(flags.config, {
        model: flags.model,
        data: flags.data,
        labelColumn: flags.labelColumn,
        textColumn: flags.textColumn,
        featureColumns: flags.featureColumns,
        labels: flags.labels,
        scores: flags.scores,
        inputName: flags.inputName,
        reference: flags.reference,
        onEmpty: flags.dropEmpty ? "drop" : undefined,
        out: flags.out,
        name: flags.name,
      });
      const reporter = new Reporter("human", flags.json ? process.stderr : process.stdout);
      const result = await packageBundle(settings, reporter);
      const m = result.card.metrics;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({
            bundle: result.dir,
            version: result.card.version,
            metrics: m,
            parity: result.parity,
            transforms: result.transforms,
            ...(result.corrections ? { corrections: result.corrections } : {}),
          })}\n`,
        );
        return;
      }
      reporter.info(
        ["", ...metricsTextLines(m), "", `bundle ${result.dir} (version ${result.card.version})`].join("\n"),
      );
    });
}
