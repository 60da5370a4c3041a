import type { Command } from "commander";
import { Engine } from "../../engine/engine.js";
import { type BuildImageResult, buildModelImage, SmokeFailure } from "../../image/build.js";
import { BUILD_SETTINGS } from "../../settings/build.js";
import { formatSmokeReport } from "../../smoke/smoke.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { formatDuration, Reporter } from "../../util/progress.js";
import { addSettings, foldDeprecated } from "../settings.js";

interface BuildFlags {
  model: string;
  repository?: string;
  tag?: string[];
  push?: boolean;
  registry?: string;
  username?: string;
  passwordStdin?: boolean;
  baseImage?: string;
  smoke: boolean;
  smokeTimeout?: string;
  json?: boolean;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new UserError("--password-stdin expects the password or token on standard input", {
      hint: 'e.g. `echo "$GITHUB_TOKEN" | modelship build ... --password-stdin`',
    });
  let text = "";
  for await (const chunk of process.stdin) text += chunk.toString();
  return text.replace(/\r?\n$/, "");
}

/** The `--json` document: what CI needs to reference and verify the image. */
export function buildJson(r: BuildImageResult) {
  return {
    image: r.image,
    tags: r.tags,
    digest: r.digest,
    imageId: r.imageId,
    pushed: r.pushed,
    sizeBytes: r.sizeBytes,
    buildMs: r.buildMs,
    baseImage: r.baseImage,
    server: {
      ref: r.server.ref,
      built: r.server.built,
      buildMs: r.server.buildMs,
      ...(r.server.pruned ? { pruned: r.server.pruned } : {}),
    },
    model: r.model,
    labels: r.labels,
    smoke: r.smoke
      ? {
          passed: r.smoke.passed,
          examples: r.smoke.examples,
          tolerance: r.smoke.tolerance,
          maxAbsDiff: r.smoke.maxAbsDiff,
          checks: r.smoke.checks,
          mismatches: r.smoke.mismatches,
        }
      : null,
    startToReadyMs: r.startToReadyMs,
  };
}

export function register(program: Command): void {
  const cmd = program
    .command("build")
    .description(
      "Build the model server image for a bundle, smoke-test it on a throwaway container, optionally push it",
    );
  addSettings(cmd, BUILD_SETTINGS).action(async (raw: BuildFlags) => {
    const flags = foldDeprecated(raw, BUILD_SETTINGS);
    const smokeTimeout = Number(flags.smokeTimeout ?? 60);
    if (!Number.isFinite(smokeTimeout) || smokeTimeout <= 0)
      throw new UserError(
        `--smoke-timeout must be a positive number of seconds, got '${flags.smokeTimeout}'`,
      );
    if (flags.registry && !flags.username)
      throw new UserError("--registry needs --username (and the password on stdin with --password-stdin)");
    if ((flags.username || flags.passwordStdin) && !flags.registry)
      throw new UserError("--username/--password-stdin need --registry <host>");
    if (flags.registry && !flags.push)
      throw new UserError("--registry is only used to push: add --push, or drop --registry");
    const password = flags.passwordStdin ? await readStdin() : undefined;
    if (flags.registry && !password)
      throw new UserError("--registry needs a password or token on standard input (--password-stdin)");

    const reporter = new Reporter(flags.json ? "silent" : "human");
    const engine = await reporter.step(
      "Connecting to the container engine",
      () => Engine.connect(),
      () => "",
    );
    let result: BuildImageResult;
    try {
      result = await buildModelImage({
        bundleDir: flags.model,
        image: flags.repository,
        extraTags: flags.tag ?? [],
        baseImage: flags.baseImage,
        smoke: flags.smoke,
        smokeTimeoutMs: smokeTimeout * 1000,
        push: flags.push,
        registry:
          flags.registry && flags.username && password
            ? { host: flags.registry, username: flags.username, password }
            : undefined,
        engine,
        reporter,
      });
    } catch (err) {
      if (flags.json && err instanceof SmokeFailure) {
        process.stdout.write(
          `${JSON.stringify({ error: "smoke test failed", smoke: err.result, startToReadyMs: err.result.startToReadyMs }, null, 2)}\n`,
        );
      }
      throw err;
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(buildJson(result), null, 2)}\n`);
      return;
    }
    if (result.smoke) reporter.info(`\n${formatSmokeReport(result.smoke)}\n`);
    reporter.info(`image:          ${result.image}`);
    reporter.info(`tags:           ${result.tags.join(", ")}`);
    reporter.info(
      `digest:         ${result.digest}${result.pushed ? "" : " (local image id; registry digest after --push)"}`,
    );
    reporter.info(`size:           ${(result.sizeBytes / 1e6).toFixed(1)} MB (base ${result.baseImage})`);
    reporter.info(
      `server image:   ${result.server.ref} (${result.server.built ? `built in ${formatDuration(result.server.buildMs)}` : "reused"})`,
    );
    reporter.info(`build:          ${formatDuration(result.buildMs)}`);
    if (result.startToReadyMs !== null) reporter.info(`start → ready:  ${result.startToReadyMs} ms`);
    if (!result.smoke)
      reporter.warn(
        "smoke test skipped (--no-smoke): this image was not checked against the golden examples",
      );
    process.exitCode = ExitCode.ok;
  });
}
