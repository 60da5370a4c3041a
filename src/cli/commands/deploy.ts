import type { Command } from "commander";
import { loadDeployConfig } from "../../config/load.js";
import { resolveStateDir } from "../../ledger/ledger.js";
import { parseEnvPairs, type RolloutFlags, settingsFromFlags } from "../../rollout/options.js";
import { deploy, edgeFailure } from "../../rollout/run.js";
import { DEPLOY_SETTINGS } from "../../settings/rollout.js";
import { ExitCode } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";
import { addSettings, foldDeprecated } from "../settings.js";

interface DeployFlags extends RolloutFlags {
  config?: string;
  image?: string;
  model?: string;
  repository?: string;
  baseImage?: string;
  env?: string[];
  stateDir?: string;
  wait?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("deploy")
    .description(
      "Canary-deploy a model image behind the edge: smoke test, 5%→25%→50%→100% with analysis, automatic abort",
    );
  addSettings(cmd, DEPLOY_SETTINGS).action(async (raw: DeployFlags) => {
    const flags = foldDeprecated(raw, DEPLOY_SETTINGS);
    const reporter = new Reporter(flags.json ? "json" : "human");
    const outcome = await deploy({
      image: flags.image,
      model: flags.model,
      repository: flags.repository,
      baseImage: flags.baseImage,
      env: parseEnvPairs(flags.env),
      stateDir: resolveStateDir(flags.stateDir),
      wait: flags.wait,
      settings: settingsFromFlags(flags, await loadDeployConfig(flags.config)),
      reporter,
    });
    reporter.event({ type: "result", ...outcome });
    if (outcome.status === "aborted") process.exitCode = ExitCode.failed;
    // A rollout during which clients of the edge saw failures is not a success either.
    const failed = edgeFailure(`deploy of ${outcome.version}`, outcome.edge);
    if (failed) throw failed;
  });
}
