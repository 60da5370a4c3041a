import { isAbsolute } from "node:path";
import type { Command } from "commander";
import { checkHost } from "../../host/check.js";
import { initHost, parsePort } from "../../host/init.js";
import { repairRouter } from "../../host/repair.js";
import { CI_EXTRAS, type HostSetupOptions, setupHost } from "../../host/setup.js";
import { resolveStateDir } from "../../ledger/ledger.js";
import { startMonitoring } from "../../monitoring/index.js";
import { repairLedger } from "../../rollout/repair.js";
import { pc } from "../../util/colors.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";

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
    .option("--engine-socket <path>", "with --install: where to start Podman's Docker API")
    .option("--monitoring", "also start Prometheus with modelship's scrape config and alert rules")
    .option("--monitoring-port <port>", "Prometheus port (default 9090, on 127.0.0.1)")
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
        },
        reporter,
      );
      const monitoring = flags.monitoring
        ? await startMonitoring({
            stateDir,
            supervisor: result.supervisor,
            reporter,
            ...(flags.monitoringPort ? { port: parsePort(flags.monitoringPort, "--monitoring-port") } : {}),
          })
        : undefined;
      if (flags.json) reporter.event({ type: "result", ...result, ...(monitoring ? { monitoring } : {}) });
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
          process.stdout.write(`${mark} ${c.name}: ${c.detail}\n`);
          if (!c.ok && c.fix) process.stdout.write(`    fix: ${c.fix}\n`);
        }
        process.stdout.write(ok ? "Host ready.\n" : "Host not ready: fix the ✗ lines above.\n");
      }
      if (!ok) process.exitCode = ExitCode.environment;
    });

  common(host.command("repair"))
    .description(
      "Repair after a crash: deploy ledger (unfinished canary out, stable at 100%), then HAProxy (config, process, live drift)",
    )
    .action(async (flags: HostFlags) => {
      const stateDir = resolveStateDir(flags.stateDir);
      const reporter = new Reporter(flags.json ? "json" : "human");
      // The ledger decides the desired state (unfinished canary out, stable at 100%); HAProxy follows.
      const ledger = await reporter.step(
        "Repairing deploy ledger",
        () => repairLedger(stateDir),
        (r) => `${r.actions.length} change(s)`,
      );
      if (flags.json) reporter.event({ type: "ledger-repair", stateDir, ...ledger });
      else for (const a of ledger.actions) reporter.info(`  ${a}`);
      const result = await reporter.step(
        "Reconciling HAProxy",
        () => repairRouter(stateDir),
        (r) => `${r.servers} server(s), pid ${r.pid}, ${r.actions.length} change(s)`,
      );
      if (flags.json) reporter.event({ type: "result", stateDir, ...result });
      else for (const a of result.actions) reporter.info(`  ${a}`);
    });
}
