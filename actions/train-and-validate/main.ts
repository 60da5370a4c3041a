import { statSync } from "node:fs";
import * as core from "@actions/core";
import { runAction, setOutputs, workspaceConfig } from "../../src/action/kit.js";
import { loadConfig, loadPackageSettings, loadTrainSettings } from "../../src/config/load.js";
import { type CheckLimits, DEFAULT_LIMITS } from "../../src/config/train.js";
import { packageBundle } from "../../src/package/package.js";
import { trainBundle } from "../../src/pipeline/train.js";
import { UserError } from "../../src/util/errors.js";
import { Reporter } from "../../src/util/progress.js";
import { reportMarkdown } from "../../src/validate/render.js";
import { type Check, runtimeChecks, validateModel } from "../../src/validate/validate.js";
import { getInputs, type TrainAndValidateInputs } from "./input-helper.js";

/**
 * train-and-validate: without `model`, trains a bundle from the CSV (inputs > modelship.yaml) and checks
 * its runtime figures; with `model`, validates that ONNX classifier (bring your own) on `data`.
 * Outputs bundle, version, metrics (JSON), passed; job summary with metrics, confusion matrix, checks.
 */
export function run(): Promise<void> {
  return runAction(async () => {
    const inputs = getInputs();
    const config = workspaceConfig(inputs.config);
    const limits = {
      maxSizeMb: inputs["max-size-mb"],
      maxLoadMs: inputs["max-load-ms"],
      maxP95Ms: inputs["max-p95-ms"],
    };
    const reporter = new Reporter("human");

    let checks: Check[];
    const bareOnnx = inputs.model !== undefined && isFile(inputs.model);
    if (inputs.model && bareOnnx) {
      // A bare .onnx trained elsewhere: package it into a bundle like a trained one (modelship package).
      if (!inputs.data)
        throw new UserError("input 'data': required with 'model' (the labelled evaluation CSV)");
      const settings = await loadPackageSettings(config, {
        model: inputs.model,
        data: inputs.data,
        labelColumn: inputs["label-column"],
        textColumn: inputs["text-column"],
        featureColumns: inputs["feature-columns"],
        labels: inputs.labels,
        scores: inputs.scores,
        inputName: inputs["input-name"],
        reference: inputs.reference,
        onEmpty: inputs["drop-empty"] ? "drop" : undefined,
        out: inputs.out,
        name: inputs.name,
      });
      const loaded = await loadConfig(config);
      const merged: CheckLimits = { ...DEFAULT_LIMITS, ...(loaded.config.validate ?? {}) };
      for (const [k, v] of Object.entries(limits)) if (v !== undefined) merged[k as keyof CheckLimits] = v;
      const result = await packageBundle(settings, reporter);
      const { card } = result;
      checks = runtimeChecks(card.runtime, merged);
      setOutputs({
        bundle: result.dir,
        version: card.version,
        metrics: card.metrics,
        passed: checks.every((c) => c.passed),
      });
      await core.summary
        .addRaw(
          reportMarkdown({
            title: `modelship package: ${card.name} ${card.version}`,
            metrics: card.metrics,
            checks,
            facts: [
              `bundle \`${result.dir}\` from \`${inputs.model}\` (${card.origin?.producer ?? "unknown producer"})`,
              `${card.io.task}, classes ${card.io.labels.map((l) => `\`${l}\``).join(", ")}`,
              `evaluation data \`${card.dataset.path}\` (sha256 ${card.dataset.sha256.slice(0, 12)}…): ${card.dataset.rows.used} rows`,
              `served graph vs the original: max |Δp| ${result.parity.toExponential(1)} over every row; ${result.transforms.length ? result.transforms.join("; ") : "graph unchanged"}`,
            ],
          }),
        )
        .write();
    } else if (inputs.model) {
      const report = await validateByo(inputs, config, limits, reporter);
      checks = report.checks;
      setOutputs({
        bundle: report.model.bundle ? inputs.model : "",
        version: report.model.bundle?.version ?? "",
        metrics: report.metrics,
        passed: report.passed,
      });
      await core.summary
        .addRaw(
          reportMarkdown({
            title: `modelship validate: ${inputs.model}`,
            metrics: report.metrics,
            checks,
            facts: [
              `${report.task}, input \`${report.input}\`, classes ${report.labels.map((l) => `\`${l}\``).join(", ")}`,
              `data \`${report.data.path}\`: ${report.data.rows} rows`,
            ],
          }),
        )
        .write();
    } else {
      const { settings, where } = await loadTrainSettings(config, {
        data: inputs.data,
        textColumn: inputs["text-column"],
        labelColumn: inputs["label-column"],
        labels: inputs.labels,
        labelMap: inputs["label-map"],
        onEmpty: inputs["drop-empty"] ? "drop" : undefined,
        out: inputs.out,
        name: inputs.name,
        limits,
      });
      const result = await trainBundle(settings, reporter, where);
      checks = runtimeChecks(result.card.runtime, settings.limits);
      const passed = checks.every((c) => c.passed);
      setOutputs({ bundle: result.dir, version: result.card.version, metrics: result.card.metrics, passed });
      const { card } = result;
      await core.summary
        .addRaw(
          reportMarkdown({
            title: `modelship train: ${card.name} ${card.version}`,
            metrics: card.metrics,
            checks,
            facts: [
              `bundle \`${result.dir}\``,
              `data \`${card.dataset.path}\` (sha256 ${card.dataset.sha256.slice(0, 12)}…): ${card.dataset.rows.train} train / ${card.dataset.rows.test} test rows`,
              `runtime (onnxruntime-node ${card.runtime.onnxruntimeVersion}): load ${card.runtime.loadMs.toFixed(0)} ms, single-row p50 ${card.runtime.singleRowP50Ms.toFixed(2)} ms / p95 ${card.runtime.singleRowP95Ms.toFixed(2)} ms, ${card.runtime.batch64RowsPerSec} rows/s at batch 64`,
              `train + export ${(result.trainMs / 1000).toFixed(1)} s; ONNX parity max |Δp| ${result.parity.toExponential(1)}`,
            ],
          }),
        )
        .write();
    }

    const failed = checks.filter((c) => !c.passed);
    if (failed.length > 0) {
      const message = `checks failed: ${failed.map((c) => `${c.name} (${c.detail})`).join("; ")}`;
      if (inputs["fail-on-check"]) core.setFailed(message);
      else core.warning(message);
    }
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

async function validateByo(
  inputs: TrainAndValidateInputs,
  config: string | undefined,
  limits: { [K in keyof CheckLimits]?: number | undefined },
  reporter: Reporter,
) {
  if (!inputs.data)
    throw new UserError("input 'data': required with 'model' (the labelled CSV to evaluate on)");
  const loaded = await loadConfig(config);
  const merged: CheckLimits = { ...DEFAULT_LIMITS, ...(loaded.config.validate ?? {}) };
  for (const [k, v] of Object.entries(limits)) if (v !== undefined) merged[k as keyof CheckLimits] = v;
  return reporter.step(
    "validate",
    async () =>
      validateModel({
        model: inputs.model!,
        data: inputs.data!,
        labelColumn: inputs["label-column"],
        textColumn: inputs["text-column"],
        featureColumns: inputs["feature-columns"],
        inputName: inputs["input-name"],
        labels: inputs.labels,
        onEmpty: inputs["drop-empty"] ? "drop" : "error",
        limits: merged,
      }),
    (r) => `${r.task}, ${r.data.rows} rows, accuracy ${r.metrics.accuracy.toFixed(3)}`,
  );
}
