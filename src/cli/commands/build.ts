import { type Command, Option } from "commander";
import { Engine } from "../../engine/engine.js";
import {
  type BuildImageResult,
  buildModelImage,
  DEFAULT_BASE_IMAGE,
  SmokeFailure,
} from "../../image/build.js";
import { formatSmokeReport } from "../../smoke/smoke.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { formatDuration, Reporter } from "../../util/progress.js";

interface BuildFlags {
  model: string;
  image?: string;
  tag: string[];
  push?: boolean;
  registry?: string;
  username?: string;
  passwordStdin?: boolean;
  baseImage?: string;
  smoke: boolean;
  smokeTimeout: number;
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
  program
    .command("build")
    .description(
      "Build the model server image for a bundle, smoke-test it on a throwaway container, optionally push it",
    )
    .requiredOption("--model <bundle>", "model bundle directory (model.json + model.onnx)")
    .option("--image <name>", "image repository without tag (default: modelship/<model name>)")
    .option(
      "--tag <tag>",
      "extra tag or full reference (repeatable); <image>:<version> and <image>:sha-<git sha> are always added",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option("--push", "push every tag after the smoke test passed")
    .option("--registry <host>", "log in to this registry before pushing (e.g. ghcr.io)")
    .option("--username <user>", "registry user name (with --registry)")
    .option("--password-stdin", "read the registry password or token from standard input")
    .option("--base-image <ref>", `base image with node (default: ${DEFAULT_BASE_IMAGE})`)
    .option("--no-smoke", "skip the golden smoke test (not recommended: it is what stops a broken image)")
    .addOption(
      new Option("--smoke-timeout <seconds>", "how long the smoke container may take to become ready")
        .default(60)
        .argParser((v) => {
          const n = Number(v);
          if (!Number.isFinite(n) || n <= 0)
            throw new UserError(`--smoke-timeout must be a positive number of seconds, got '${v}'`);
          return n;
        }),
    )
    .option("--json", "print one JSON document instead of progress lines")
    .action(async (flags: BuildFlags) => {
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
          image: flags.image,
          extraTags: flags.tag,
          baseImage: flags.baseImage,
          smoke: flags.smoke,
          smokeTimeoutMs: flags.smokeTimeout * 1000,
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
      reporter.info(`build:          ${formatDuration(result.buildMs)}`);
      if (result.startToReadyMs !== null) reporter.info(`start → ready:  ${result.startToReadyMs} ms`);
      if (!result.smoke)
        reporter.warn(
          "smoke test skipped (--no-smoke): this image was not checked against the golden examples",
        );
      process.exitCode = ExitCode.ok;
    });
}
