import type { Command } from "commander";
import { resolveStateDir } from "../../ledger/ledger.js";
import { type RolloutFlags, settingsFromFlags } from "../../rollout/options.js";
import { edgeFailure, rollback } from "../../rollout/run.js";
import { Reporter } from "../../util/progress.js";
import { rolloutOptions } from "./deploy.js";

interface RollbackFlags extends RolloutFlags {
  to?: string;
  reason: string;
  by?: string;
  stateDir?: string;
  wait?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("rollback")
    .description(
      "Switch traffic back to the previous version (warm standby: a weight flip; else start it from its image)",
    )
    .option("--to <version>", "version to roll back to (default: the warm standby, else the newest retired)")
    .requiredOption("--reason <text>", "why (recorded in the ledger with who did it)")
    .option("--by <name>", "who rolls back (default $GITHUB_ACTOR, else $USER)");
  rolloutOptions(cmd).action(async (flags: RollbackFlags) => {
    const reporter = new Reporter(flags.json ? "json" : "human");
    const outcome = await rollback({
      to: flags.to,
      reason: flags.reason,
      by: flags.by,
      stateDir: resolveStateDir(flags.stateDir),
      wait: flags.wait,
      settings: settingsFromFlags(flags),
      reporter,
    });
    reporter.event({ type: "result", ...outcome });
    const failed = edgeFailure(`rollback to ${outcome.version}`, outcome.edge);
    if (failed) throw failed;
  });
}
