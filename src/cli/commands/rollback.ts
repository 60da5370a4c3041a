import type { Command } from "commander";
import { resolveStateDir } from "../../ledger/ledger.js";
import { type RolloutFlags, settingsFromFlags } from "../../rollout/options.js";
import { edgeFailure, rollback } from "../../rollout/run.js";
import { ROLLBACK_SETTINGS } from "../../settings/rollout.js";
import { Reporter } from "../../util/progress.js";
import { addSettings } from "../settings.js";

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
    );
  addSettings(cmd, ROLLBACK_SETTINGS).action(async (flags: RollbackFlags) => {
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
