import { isAbsolute } from "node:path";
import type { Command } from "commander";
import { checkHost } from "../../host/check.js";
import { DEFAULT_HEAL_POLICY, type HealPolicy } from "../../host/heal.js";
import { initHost, parsePort } from "../../host/init.js";
import { repairRouter } from "../../host/repair.js";
import { repairLedger } from "../../host/repair-ledger.js";
import { CI_EXTRAS, type HostSetupOptions, setupHost } from "../../host/setup.js";
import { installWatch, runWatch, watchCheck } from "../../host/watch.js";
import { resolveStateDir } from "../../ledger/ledger.js";
import { startMonitoring } from "../../monitoring/index.js";
import { parseDuration } from "../../rollout/settings.js";
import { pc } from "../../util/colors.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";
import { safeText } from "../../util/text.js";

interface HostFlags {
  json?: boolean;
  stateDir?: string;
  edgePort?: string;
  edgeBind?: string;
  metricsPort?: string;
  socketGroup?: string;
  monitoring?: boolean;
  monitoringPort?: string;
  install?: boolean;
  engineSocket?: string;
  with?: string;
  printDockerHost?: boolean;
  watch?: boolean;
  watchInterval?: string;
  interval?: string;
  once?: boolean;
  grace?: string;
  maxRestarts?: string;
  restartWindow?: string;
  pin?: boolean;
  pinHeader?: string;
}

function healPolicy(flags: HostFlags): HealPolicy {
  const policy = { ...DEFAULT_HEAL_POLICY };
  if (flags.maxRestarts !== undefined) {
    const n = Number(flags.maxRestarts);
    if (!Number.isInteger(n) || n < 0)
      throw new UserError(`--max-restarts must be a whole number ≥ 0, got '${flags.maxRestarts}'`, {
        exitCode: ExitCode.usage,
      });
    policy.maxRestarts = n;
  }
  if (flags.restartWindow !== undefined) policy.windowMs = duration(flags.restartWindow, "--restart-window");
  return policy;
}

function duration(text: string, flag: string): number {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
  } catch {
    // below
  }
  throw new UserError(`${flag} must be a duration like 30s, 5m or 1h, got '${text}'`, {
    exitCode: ExitCode.usage,
  });
}

function setupOptions(flags: HostFlags, install: boolean): HostSetupOptions {
  const extras: Record<string, string> = {};
  for (const cmd of (flags.with ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean)) {
    if (!/^[a-z0-9][a-z0-9.+-]*$/.test(cmd))
      throw new UserError(`--with takes command names like wrk,promtool, got '${cmd}'`, {
        exitCode: ExitCode.usage,
      });
    extras[cmd] = CI_EXTRAS[cmd] ?? cmd;
  }
  if (flags.engineSocket !== undefined && !isAbsolute(flags.engineSocket))
    throw new UserError(`--engine-socket must be an absolute path, got '${flags.engineSocket}'`, {
      exitCode: ExitCode.usage,
    });
  return {
    install,
    extras,
    ...(flags.engineSocket ? { socket: flags.engineSocket } : {}),
    ...(flags.socketGroup ? { socketGroup: flags.socketGroup } : {}),
  };
}

export function register(program: Command): void {
  const host = program
    .command("host")
    .description(
      "Set up and verify this host: state dir, HAProxy edge (config, process, runtime API), engine",
    );

  const common = (cmd: Command) =>
    cmd
      .option("--json", "machine-readable output")
      .option("--state-dir <dir>", "state dir (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root)");

  host
    .command("setup")
    .description(
      "Install and start what this host needs (container engine, HAProxy): Docker when its daemon can run, else Podman's Docker API; as root on Debian/Ubuntu, else prints the commands (exit 3)",
    )
    .option("--json", "machine-readable output (NDJSON steps, then the result)")
    .option("--no-install", "change nothing: print the commands this host needs (exit 3 if any)")
    .option(
      "--engine-socket <path>",
      "where to start Podman's Docker API (default: DOCKER_HOST's path, else /run/modelship/podman.sock)",
    )
    .option("--socket-group <group>", "group allowed to use the engine socket (the runner's)")
    .option("--with <commands>", "also install these commands, e.g. wrk,prometheus,promtool (CI)")
    .option("--print-docker-host", "progress on stderr; stdout is only the DOCKER_HOST to use (for scripts)")
    .action(async (flags: HostFlags) => {
      const options = setupOptions(flags, flags.install !== false);
      const reporter = new Reporter(
        flags.json ? "json" : "human",
        flags.printDockerHost ? process.stderr : process.stdout,
      );
      const result = await setupHost(reporter, options);
      if (flags.printDockerHost) process.stdout.write(`${result.dockerHost}\n`);
      else if (flags.json) reporter.event({ type: "result", ...result });
      else {
        for (const n of result.notes) reporter.info(`  ${n}`);
        reporter.info(`Host set up: ${result.server} at ${result.dockerHost}, HAProxy ${result.haproxy}`);
        reporter.info(`export DOCKER_HOST=${result.dockerHost}`);
      }
    });

  common(host.command("init"))
    .description(
      "Create the state dir, write the HAProxy config and start HAProxy (systemd unit when available)",
    )
    .option("--edge-port <port>", "port users send traffic to (default 8080)")
    .option("--edge-bind <addr>", "address the edge listens on (default 0.0.0.0)")
    .option("--metrics-port <port>", "HAProxy Prometheus exporter port (default 8404, on 127.0.0.1)")
    .option(
      "--socket-group <group>",
      "group that may use the runtime API socket (default under sudo: the caller's)",
    )
    .option("--install", "first install and start the container engine and HAProxy (`host setup`)")
    .option(
      "--watch",
      "install the periodic self-healing check (default; MODELSHIP_WATCH=0 turns the default off)",
    )
    .option("--no-watch", "do not install the periodic self-healing check (systemd timer, else `host watch`)")
    .option("--watch-interval <duration>", "how often the self-healing check runs (default 30s)")
    .option("--engine-socket <path>", "with --install: where to start Podman's Docker API")
    .option("--monitoring", "also start Prometheus with modelship's scrape config and alert rules")
    .option("--monitoring-port <port>", "Prometheus port (default 9090, on 127.0.0.1)")
    .option(
      "--pin",
      "turn on pinning by header: a request naming a running version (stable, canary, standby, shadow candidate) goes to it, any other version gets a 404 (docs/pinning.md)",
    )
    .option("--no-pin", "turn pinning by header off (the default; the header is then ignored)")
    .option(
      "--pin-header <name>",
      "header that names the version; implies --pin (default x-modelship-version)",
    )
    .action(async (flags: HostFlags) => {
      const reporter = new Reporter(flags.json ? "json" : "human");
      const stateDir = resolveStateDir(flags.stateDir);
      if (flags.install) {
        const setup = await setupHost(reporter, setupOptions(flags, true));
        if (flags.json) reporter.event({ type: "setup", ...setup });
      }
      const result = await initHost(
        {
          stateDir,
          ...(flags.edgePort ? { edgePort: parsePort(flags.edgePort, "--edge-port") } : {}),
          ...(flags.edgeBind ? { edgeBind: flags.edgeBind } : {}),
          ...(flags.metricsPort ? { metricsPort: parsePort(flags.metricsPort, "--metrics-port") } : {}),
          ...(flags.socketGroup ? { socketGroup: flags.socketGroup } : {}),
          ...(flags.pin !== undefined ? { pin: flags.pin } : {}),
          ...(flags.pinHeader !== undefined ? { pinHeader: flags.pinHeader } : {}),
        },
        reporter,
      );
      const watchIntervalMs = flags.watchInterval
        ? duration(flags.watchInterval, "--watch-interval")
        : 30_000;
      const watch = !(flags.watch ?? process.env.MODELSHIP_WATCH !== "0")
        ? undefined
        : await reporter.step(
            "Installing the self-healing check",
            () => installWatch(stateDir, result.supervisor, Math.max(1, Math.round(watchIntervalMs / 1000))),
            (w) => w.detail,
          );
      const monitoring = flags.monitoring
        ? await startMonitoring({
            stateDir,
            supervisor: result.supervisor,
            reporter,
            ...(flags.monitoringPort ? { port: parsePort(flags.monitoringPort, "--monitoring-port") } : {}),
          })
        : undefined;
      if (flags.json)
        reporter.event({
          type: "result",
          ...result,
          ...(watch ? { watch } : {}),
          ...(monitoring ? { monitoring } : {}),
        });
      else {
        reporter.info(
          `Host ready: edge ${result.edgeUrl}, metrics ${result.metricsUrl} (${result.supervisor})`,
        );
        if (monitoring) reporter.info(`Monitoring: Prometheus ${monitoring.url} (${monitoring.supervisor})`);
      }
    });

  common(host.command("check"))
    .description(
      "Verify engine, HAProxy (installed, running our config, runtime API) and state dir; exit 3 if not",
    )
    .action(async (flags: HostFlags) => {
      const stateDir = resolveStateDir(flags.stateDir);
      const checks = await checkHost(stateDir);
      const ok = checks.every((c) => c.ok);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ok, stateDir, checks }, null, 2)}\n`);
      } else {
        for (const c of checks) {
          const mark = c.ok ? pc.green("✓") : pc.red("✗");
          process.stdout.write(`${mark} ${c.name}: ${safeText(c.detail)}\n`);
          if (!c.ok && c.fix) process.stdout.write(`    fix: ${safeText(c.fix)}\n`);
        }
        process.stdout.write(ok ? "Host ready.\n" : "Host not ready: fix the ✗ lines above.\n");
      }
      if (!ok) process.exitCode = ExitCode.environment;
    });

  common(host.command("repair"))
    .description(
      "Repair after a crash or reboot: containers the ledger wants back (rate-limited), deploy ledger (unfinished canary out, stable at 100%), then HAProxy (config, process, live drift); exit 1 if a container could not be brought back",
    )
    .option(
      "--max-restarts <n>",
      "restarts of one version allowed per --restart-window before it is only reported (default 3)",
    )
    .option("--restart-window <duration>", "window for --max-restarts (default 15m)")
    .action(async (flags: HostFlags) => {
      const stateDir = resolveStateDir(flags.stateDir);
      const reporter = new Reporter(flags.json ? "json" : "human");
      const policy = healPolicy(flags);
      // The ledger decides the desired state (unfinished canary out, stable at 100%); HAProxy follows.
      const ledger = await reporter.step(
        "Repairing deploy ledger",
        () => repairLedger(stateDir, { heal: policy }),
        (r) =>
          `${r.actions.length} change(s)${r.heal.healed.length ? `, brought back ${r.heal.healed.join(", ")}` : ""}`,
      );
      if (ledger.heal.failed.length) process.exitCode = ExitCode.failed;
      if (flags.json) reporter.event({ type: "ledger-repair", stateDir, ...ledger });
      else {
        for (const a of ledger.actions) reporter.info(`  ${a}`);
        for (const w of ledger.warnings) reporter.warn(w);
      }
      // Something is wrong that repair must not fix by itself (e.g. the stable is down): not a success.
      if (ledger.warnings.length > 0) process.exitCode = ExitCode.failed;
      const result = await reporter.step(
        "Reconciling HAProxy",
        () => repairRouter(stateDir),
        (r) => `${r.servers} server(s), pid ${r.pid}, ${r.actions.length} change(s)`,
      );
      if (flags.json) reporter.event({ type: "result", stateDir, ...result });
      else for (const a of result.actions) reporter.info(`  ${a}`);
    });

  common(host.command("watch"))
    .description(
      "Self-healing loop: every --interval, `host repair` when a container the ledger wants or HAProxy is down (host init runs it, or a systemd timer runs --once)",
    )
    .option("--interval <duration>", "time between checks (default 30s)")
    .option("--once", "one check, then exit (what the systemd timer runs)")
    .option("--grace <n>", "checks that must see a problem before repairing (default 1; --once: 0)")
    .option("--max-restarts <n>", "restarts of one version allowed per --restart-window (default 3)")
    .option("--restart-window <duration>", "window for --max-restarts (default 15m)")
    .action(async (flags: HostFlags) => {
      const stateDir = resolveStateDir(flags.stateDir);
      const intervalMs = flags.interval ? duration(flags.interval, "--interval") : 30_000;
      const grace = flags.grace === undefined ? (flags.once ? 0 : 1) : Number(flags.grace);
      if (!Number.isInteger(grace) || grace < 0)
        throw new UserError(`--grace must be a whole number ≥ 0, got '${flags.grace}'`, {
          exitCode: ExitCode.usage,
        });
      const options = { stateDir, intervalMs, graceChecks: grace, policy: healPolicy(flags) };
      if (flags.once) {
        const line = await watchCheck(options, new Map());
        process.stdout.write(`${line ?? "all well"}\n`);
        return;
      }
      const stop = new AbortController();
      process.once("SIGTERM", () => stop.abort());
      process.once("SIGINT", () => stop.abort());
      process.stdout.write(
        `${new Date().toISOString()} watching ${stateDir} every ${intervalMs / 1000}s (pid ${process.pid})\n`,
      );
      await runWatch(options, stop.signal);
    });
}
