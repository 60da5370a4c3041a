import type { Command } from "commander";
import { parsePort } from "../../host/init.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";
import { teardown } from "../demo/cleanup.js";
import { DEMO_DEFAULTS, demoStateDir, runDemo } from "../demo/run.js";

interface DemoFlags {
  data?: string;
  fast?: boolean;
  keep?: boolean;
  json?: boolean;
  stateDir?: string;
  edgePort?: string;
  rps?: string;
  install: boolean;
  down?: boolean;
}

export function register(program: Command): void {
  program
    .command("demo")
    .description(
      "Show the whole journey on this host: train v1 → deploy → live traffic → train v2 → gate → canary → rollback → forward, counting every request",
    )
    .option(
      "--data <csv>",
      `airline tweets CSV (default: $MODELSHIP_DATA, modelship.yaml train.data, else ${DEMO_DEFAULTS.data})`,
    )
    .option("--fast", "shorter canary (10%→50%→100%, 3s steps) and 2-fold CV: for CI and the README test")
    .option("--keep", "leave v2 serving (and v1 as warm standby) behind the edge when done")
    .option("--down", "take down a demo left running with --keep, then exit")
    .option(
      "--state-dir <dir>",
      "demo state dir: ledger, HAProxy config, bundles (default: $MODELSHIP_DEMO_STATE_DIR, else ~/.modelship/demo)",
    )
    .option(
      "--edge-port <port>",
      `port the demo edge listens on (default ${DEMO_DEFAULTS.edgePort}, another free one if taken)`,
    )
    .option("--rps <n>", `live traffic rate in requests per second (default ${DEMO_DEFAULTS.rps})`)
    .option("--no-install", "never install or start host packages; print the commands instead (exit 3)")
    .option("--json", "NDJSON events (each command's output included) and a final result event")
    .addHelpText(
      "after",
      "\nExit: 0 done with zero failed requests · 1 a step failed or requests failed · 2 bad flags or data · 3 host not ready (prints the commands) · 130 interrupted (cleaned up)",
    )
    .action(async (flags: DemoFlags) => {
      const reporter = new Reporter(flags.json ? "json" : "human");
      const stateDir = demoStateDir(flags.stateDir);
      if (flags.down) {
        const down = await reporter.step(
          "Taking the demo down",
          () => teardown(stateDir),
          (d) =>
            `(${d.containers.length} container(s) removed, HAProxy ${d.haproxyStopped ? "stopped" : "not running"})`,
        );
        reporter.event({ type: "result", stateDir, ...down });
        return;
      }
      const rps = flags.rps === undefined ? DEMO_DEFAULTS.rps : Number(flags.rps);
      if (!Number.isFinite(rps) || rps < 10 || rps > 5000)
        throw new UserError(`--rps must be a number between 10 and 5000, got '${flags.rps}'`, {
          exitCode: ExitCode.usage,
        });
      const result = await runDemo(
        {
          data: flags.data,
          fast: Boolean(flags.fast),
          keep: Boolean(flags.keep),
          json: Boolean(flags.json),
          stateDir,
          edgePort: flags.edgePort === undefined ? undefined : parsePort(flags.edgePort, "--edge-port"),
          rps,
          install: flags.install,
        },
        reporter,
      );
      if (result.traffic.failed > 0) process.exitCode = ExitCode.failed;
    });
}
