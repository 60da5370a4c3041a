import type { Command } from "commander";
import { resolveStateDir } from "../../ledger/ledger.js";
import { parseEnvPairs, type RolloutFlags, settingsFromFlags } from "../../rollout/options.js";
import { deploy, edgeFailure } from "../../rollout/run.js";
import { ExitCode } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";

interface DeployFlags extends RolloutFlags {
  image?: string;
  model?: string;
  repository?: string;
  baseImage?: string;
  env?: string[];
  stateDir?: string;
  wait?: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Rollout tuning flags shared with `rollback`. */
export function rolloutOptions(cmd: Command): Command {
  return cmd
    .option("--ready-timeout <duration>", "how long a new container may take to become ready (default 60s)")
    .option(
      "--drain-timeout <duration>",
      "how long to wait for a drained server's sessions to end (default 30s)",
    )
    .option(
      "--standby-window <duration>",
      "keep the replaced version running for instant rollback (default 24h)",
    )
    .option("--memory <size>", "container memory limit (default 512m)")
    .option("--cpus <n>", "container CPU limit (default 1)")
    .option("--workers <n>", "server worker processes per container (default 1)")
    .option("--name-prefix <prefix>", "container name prefix (default modelship-)")
    .option(
      "--state-dir <dir>",
      "state dir with the ledger and router state (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root, else ~/.modelship)",
    )
    .option("--wait", "queue behind a running deploy/rollback instead of refusing (exit 4)")
    .option("--json", "NDJSON progress events and a final result event");
}

export function register(program: Command): void {
  const cmd = program
    .command("deploy")
    .description(
      "Canary-deploy a model image behind the edge: smoke test, 5%→25%→50%→100% with analysis, automatic abort",
    )
    .option("--image <ref>", "model image built by `modelship build`")
    .option("--model <bundle>", "model bundle directory: build its image first, then deploy it")
    .option("--repository <repo>", "image repository for --model builds (default modelship/<name>)")
    .option("--base-image <ref>", "base image for --model builds")
    .option("--steps <list>", "canary traffic percentages (default 5,25,50,100)")
    .option("--interval <duration>", "analysis interval per step, e.g. 30s (default 30s)")
    .option("--fast", "demo/test speed: 4s intervals, smaller minimum samples")
    .option(
      "--max-extensions <n>",
      "extend an inconclusive step (too little traffic) at most n times (default 3)",
    )
    .option("--failure-threshold <n>", "failed analyses at one step before aborting (default 1)")
    .option("--allow-no-data", "promote even when there was no traffic to analyse")
    .option("--skip-smoke", "skip the golden smoke test on the candidate (drills; the analysis still judges)")
    .option("--max-error-rate <ratio>", "largest canary 5xx rate (default 0.01)")
    .option("--max-p95 <ms>", "absolute p95 latency limit in ms (default 250)")
    .option("--max-p99 <ms>", "absolute p99 latency limit in ms (default 500)")
    .option("--latency-factor <k>", "canary p95/p99 at most k × stable's (+5 ms) (default 2)")
    .option("--max-class-shift <d>", "largest class-mix distance canary vs stable, 0..1 (default 0.15)")
    .option("--max-psi <x>", "largest confidence-histogram PSI canary vs stable (default 0.25)")
    .option("--min-requests <n>", "canary responses needed to judge errors and latency (default 20)")
    .option("--min-predictions <n>", "canary predictions needed to judge quality (default 100)")
    .option("--keep-images <n>", "keep images of the newest n versions (default 3)")
    .option("--env <KEY=VALUE>", "extra container environment (repeatable)", collect);
  rolloutOptions(cmd).action(async (flags: DeployFlags) => {
    const reporter = new Reporter(flags.json ? "json" : "human");
    const outcome = await deploy({
      image: flags.image,
      model: flags.model,
      repository: flags.repository,
      baseImage: flags.baseImage,
      env: parseEnvPairs(flags.env),
      stateDir: resolveStateDir(flags.stateDir),
      wait: flags.wait,
      settings: settingsFromFlags(flags),
      reporter,
    });
    reporter.event({ type: "result", ...outcome });
    if (outcome.status === "aborted") process.exitCode = ExitCode.failed;
    // A rollout during which clients of the edge saw failures is not a success either.
    const failed = edgeFailure(`deploy of ${outcome.version}`, outcome.edge);
    if (failed) throw failed;
  });
}
