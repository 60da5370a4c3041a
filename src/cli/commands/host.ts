import type { Command } from "commander";
import { checkHost } from "../../host/check.js";
import { initHost, parsePort } from "../../host/init.js";
import { repairRouter } from "../../host/repair.js";
import { resolveStateDir } from "../../ledger/ledger.js";
import { startMonitoring } from "../../monitoring/index.js";
import { repairLedger } from "../../rollout/repair.js";
import { pc } from "../../util/colors.js";
import { ExitCode } from "../../util/errors.js";
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
    .option("--monitoring", "also start Prometheus with modelship's scrape config and alert rules")
    .option("--monitoring-port <port>", "Prometheus port (default 9090, on 127.0.0.1)")
    .action(async (flags: HostFlags) => {
      const reporter = new Reporter(flags.json ? "json" : "human");
      const stateDir = resolveStateDir(flags.stateDir);
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
          process.stdout.write(`${mark} ${c.name}: ${safeText(c.detail)}\n`);
          if (!c.ok && c.fix) process.stdout.write(`    fix: ${safeText(c.fix)}\n`);
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
}
