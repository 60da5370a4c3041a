import * as core from "@actions/core";
import { runAction, setOutputs } from "../../src/action/kit.js";
import {
  type BuildImageResult,
  buildModelImage,
  SmokeFailure,
  type SmokeSummary,
} from "../../src/image/build.js";
import { formatDuration, Reporter } from "../../src/util/progress.js";
import { getInputs } from "./input-helper.js";

/** build-image: inputs → build + golden smoke test (+ push) → outputs and job summary. */
export function run(): Promise<void> {
  return runAction(async () => {
    const inputs = getInputs();
    if (inputs.password) core.setSecret(inputs.password);
    try {
      const result = await buildModelImage({
        bundleDir: inputs.bundle,
        image: inputs.image ?? inputs.repository,
        extraTags: inputs.tags,
        baseImage: inputs["base-image"],
        smoke: inputs.smoke,
        smokeTimeoutMs: inputs["smoke-timeout"] * 1000,
        push: inputs.push,
        registry:
          inputs.registry && inputs.username && inputs.password
            ? { host: inputs.registry, username: inputs.username, password: inputs.password }
            : undefined,
        reporter: new Reporter("human"),
      });
      setOutputs({
        image: result.image,
        digest: result.digest,
        tags: result.tags.join("\n"),
        "size-bytes": result.sizeBytes,
        "start-to-ready-ms": result.startToReadyMs ?? undefined,
      });
      await core.summary.addRaw(summaryMarkdown(result)).write();
      if (!result.smoke)
        core.warning(
          "smoke test skipped (smoke: false): the image was not checked against the golden examples",
        );
    } catch (err) {
      if (err instanceof SmokeFailure) await core.summary.addRaw(smokeMarkdown(err.result, "failed")).write();
      throw err;
    }
  });
}

const cell = (s: string | number) => String(s).replace(/\|/g, "\\|").replace(/\n/g, " ");

function smokeMarkdown(smoke: SmokeSummary, verdict: "passed" | "failed"): string {
  const lines = [
    `### Golden smoke test ${verdict === "passed" ? "✅ passed" : "❌ failed"}`,
    "",
    `${smoke.examples} golden examples · tolerance ${smoke.tolerance} · start → ready ${smoke.startToReadyMs} ms`,
    "",
    "| check | result | detail |",
    "| --- | --- | --- |",
    ...smoke.checks.map((c) => `| ${cell(c.name)} | ${c.ok ? "ok" : "**failed**"} | ${cell(c.detail)} |`),
  ];
  if (smoke.mismatches.length > 0) {
    lines.push(
      "",
      "| # | route | input | field | expected | actual | \\|diff\\| |",
      "| --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const m of smoke.mismatches.slice(0, 50))
      lines.push(
        `| ${m.example} | ${cell(m.route)} | ${cell(m.input)} | ${cell(m.field)} | ${cell(m.expected)} | ${cell(m.actual)} | ${m.diff === null ? "" : m.diff.toExponential(2)} |`,
      );
  }
  return `${lines.join("\n")}\n`;
}

function summaryMarkdown(r: BuildImageResult): string {
  const lines = [
    `## Image ${cell(r.image)}`,
    "",
    "| | |",
    "| --- | --- |",
    `| model | ${cell(r.model.name)} ${cell(r.model.version)} (sha256 \`${r.model.sha256.slice(0, 12)}…\`) |`,
    `| tags | ${r.tags.map((t) => `\`${t}\``).join("<br>")} |`,
    `| digest | \`${r.digest}\`${r.pushed ? "" : " (local image id)"} |`,
    `| size | ${(r.sizeBytes / 1e6).toFixed(1)} MB |`,
    `| base | \`${cell(r.baseImage)}\` |`,
    `| build time | ${formatDuration(r.buildMs)} |`,
    `| pushed | ${r.pushed ? "yes" : "no"} |`,
    "",
  ];
  return `${lines.join("\n")}${r.smoke ? smokeMarkdown(r.smoke, "passed") : "_Smoke test skipped._\n"}`;
}
