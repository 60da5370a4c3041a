import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { Router } from "../router/router.js";
import { systemExecutable } from "../util/command.js";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile, atomicWriteJson } from "../util/fs.js";
import { Reporter } from "../util/progress.js";
import { assertSafeStateDir } from "../util/state-dir.js";
import { ASSET, assetsDir, type MonitoringPaths, monitoringPaths } from "./paths.js";
import {
  checkConfig,
  isReady,
  launchDaemon,
  prometheusUrl,
  reloadDaemon,
  renderPrometheusUnit,
  requireBinaries,
  runningPid,
  stopDaemon,
  systemctl,
} from "./prometheus.js";
import { readAsset, renderPrometheusConfig, renderRules } from "./render.js";
import { MonitoringSettings, type MonitoringSettingsInput } from "./schema.js";
import { handOverTargets, readTargets, syncTargets } from "./targets.js";

export { monitoringPaths } from "./paths.js";
export { renderPrometheusUnit, stopDaemon } from "./prometheus.js";
export { renderPrometheusConfig, renderRules } from "./render.js";
export { MonitoringSettings, ScrapeTarget } from "./schema.js";
export { handOverTargets, syncTargets, TARGET_LABEL, targetsFromLedger, writeTargets } from "./targets.js";

export interface StartMonitoringOptions
  extends Partial<Omit<MonitoringSettingsInput, "stateDir" | "listen">> {
  stateDir: string;
  port?: number;
  bind?: string;
  /** HAProxy exporter host:port; default: from the router settings `host init` wrote. */
  haproxyTarget?: string;
  /** `supervisor` (from the settings): pass the edge's choice (`host init` picks systemd when it is PID 1). */
  reporter?: Reporter;
  /** Directory holding the shipped prometheus.yml and rules (default: this installation's monitoring/). */
  assets?: string;
  readyTimeoutMs?: number;
}

export interface MonitoringResult {
  url: string;
  configPath: string;
  rulesPath: string;
  targetsPath: string;
  targets: number;
  supervisor: "daemon" | "systemd";
  /** Daemon only. */
  pid?: number;
  unitPath?: string;
  /** false when it was already running and only reloaded. */
  started: boolean;
}

const UNIT_DIR = "/etc/systemd/system";

/**
 * Renders the monitoring stack into `<stateDir>/monitoring/` (prometheus.yml, rules, file_sd targets
 * from the deploy ledger), checks it with promtool and starts Prometheus — or reloads it when it
 * already runs. Idempotent; settings persist in `<stateDir>/monitoring.json`.
 */
export async function startMonitoring(options: StartMonitoringOptions): Promise<MonitoringResult> {
  const reporter = options.reporter ?? new Reporter("silent");
  const paths = monitoringPaths(options.stateDir);
  const settings = await loadSettings(paths, options);
  await requireBinaries(settings);
  const haproxyTarget = options.haproxyTarget ?? (await haproxyExporterAddress(options.stateDir));

  const targets = await reporter.step(
    "Writing Prometheus config",
    async () => {
      await mkdir(paths.rulesDir, { recursive: true });
      await mkdir(paths.targetsDir, { recursive: true });
      const assets = options.assets ?? assetsDir();
      await atomicWriteFile(paths.rules, renderRules(await readAsset(assets, ASSET.rules), settings));
      const written = await syncTargets(options.stateDir);
      await handOverTargets(options.stateDir);
      const config = renderPrometheusConfig(await readAsset(assets, ASSET.config), {
        settings,
        paths,
        haproxyTarget,
      });
      await atomicWriteFile(paths.config, config);
      await checkConfig(settings, paths.config);
      await atomicWriteJson(paths.settings, persisted(settings));
      return written.length;
    },
    (n) => `${paths.config}, ${n} model target${n === 1 ? "" : "s"}, HAProxy exporter ${haproxyTarget}`,
  );

  const base = {
    url: prometheusUrl(settings),
    configPath: paths.config,
    rulesPath: paths.rules,
    targetsPath: paths.modelTargets,
    targets,
    supervisor: settings.supervisor,
  };

  if (settings.supervisor === "systemd") {
    const unitPath = join(UNIT_DIR, settings.systemdUnit);
    await reporter.step(
      "Starting Prometheus (systemd)",
      async () => {
        await atomicWriteFile(unitPath, renderPrometheusUnit(settings, paths));
        await systemctl("daemon-reload");
        await systemctl("enable", settings.systemdUnit);
        await systemctl("reload-or-restart", settings.systemdUnit);
      },
      () => `${settings.systemdUnit}, ${base.url}`,
    );
    return { ...base, unitPath, started: true };
  }

  return reporter.step(
    "Starting Prometheus",
    async () => {
      const live = await runningPid(paths);
      if (live !== undefined) {
        await reloadDaemon(settings, live);
        return { ...base, pid: live, started: false };
      }
      const pid = await launchDaemon(settings, paths, options.readyTimeoutMs);
      return { ...base, pid, started: true };
    },
    (r) => `${r.started ? "started" : "reloaded"} pid ${r.pid}, ${r.url}`,
  );
}

export interface MonitoringStatus {
  /** `startMonitoring` has run for this state dir (monitoring.json exists). */
  configured: boolean;
  url?: string;
  supervisor?: "daemon" | "systemd";
  /** Daemon pid when it runs (systemd: unknown here, see `ready`). */
  pid?: number;
  /** GET /-/ready answered 200. */
  ready: boolean;
  /** Model targets in the file_sd file. */
  targets: number;
  /** Names of alerts firing now (empty when Prometheus does not answer). */
  firing: string[];
}

/** For `host check` / `status`: is Prometheus there, how many models it scrapes, what fires. */
export async function monitoringStatus(stateDir: string): Promise<MonitoringStatus> {
  const paths = monitoringPaths(stateDir);
  const targets = (await readTargets(paths.modelTargets).catch(() => [])).length;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(paths.settings, "utf8"));
  } catch {
    return { configured: false, ready: false, targets, firing: [] };
  }
  const parsed = MonitoringSettings.safeParse(withoutBinaries(raw));
  if (!parsed.success) return { configured: false, ready: false, targets, firing: [] };
  const settings = parsed.data;
  const url = prometheusUrl(settings);
  const pid = settings.supervisor === "daemon" ? await runningPid(paths) : undefined;
  const ready = await isReady(settings);
  let firing: string[] = [];
  if (ready) {
    try {
      const res = await fetch(`${url}/api/v1/alerts`, { signal: AbortSignal.timeout(2000) });
      const body = AlertsAnswer.parse(await res.json());
      firing = [
        ...new Set(body.data.alerts.filter((a) => a.state === "firing").map((a) => a.labels.alertname)),
      ]
        .filter((n): n is string => Boolean(n))
        .sort();
    } catch {
      // answers /-/ready but not the API: report no alerts rather than fail the check
    }
  }
  return {
    configured: true,
    url,
    supervisor: settings.supervisor,
    ...(pid ? { pid } : {}),
    ready,
    targets,
    firing,
  };
}

const AlertsAnswer = z.object({
  data: z.object({
    alerts: z.array(z.object({ state: z.string(), labels: z.record(z.string(), z.string()) })),
  }),
});

/** Stops the daemon Prometheus of a state dir (no-op when it is not running). */
export async function stopMonitoring(stateDir: string): Promise<boolean> {
  return stopDaemon(monitoringPaths(stateDir));
}

async function loadSettings(
  paths: MonitoringPaths,
  options: StartMonitoringOptions,
): Promise<MonitoringSettings> {
  await assertSafeStateDir(options.stateDir);
  let saved: Record<string, unknown> = {};
  try {
    saved = JSON.parse(await readFile(paths.settings, "utf8")) as Record<string, unknown>;
  } catch {
    // first run (or unreadable): defaults, then overrides
  }
  // Executables never come from the state dir (its owner may be less privileged than whoever runs this).
  saved = withoutBinaries(saved);
  const { port, bind, haproxyTarget: _h, reporter: _r, assets: _a, readyTimeoutMs: _t, ...rest } = options;
  const savedListen = (saved.listen ?? {}) as Record<string, unknown>;
  const merged = {
    ...saved,
    ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    listen: {
      ...savedListen,
      ...(port !== undefined ? { port } : {}),
      ...(bind !== undefined ? { bind } : {}),
    },
  };
  const parsed = MonitoringSettings.safeParse(merged);
  if (!parsed.success)
    throw new UserError(
      `invalid monitoring settings: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      { exitCode: ExitCode.usage, hint: `fix the option or delete ${paths.settings}` },
    );
  const settings = parsed.data;
  if (options.prometheusBin === undefined)
    settings.prometheusBin = (await systemExecutable("prometheus")) ?? settings.prometheusBin;
  if (options.promtoolBin === undefined)
    settings.promtoolBin = (await systemExecutable("promtool")) ?? settings.promtoolBin;
  return settings;
}

/** monitoring.json as written: everything but the executables. */
function persisted(settings: MonitoringSettings): Omit<MonitoringSettings, "prometheusBin" | "promtoolBin"> {
  const { prometheusBin: _p, promtoolBin: _t, ...rest } = settings;
  return rest;
}

/** Drops (legacy) executable paths from a monitoring.json read back. */
function withoutBinaries(raw: unknown): Record<string, unknown> {
  if (!raw || typeof raw !== "object") return {};
  const { prometheusBin: _p, promtoolBin: _t, ...rest } = raw as Record<string, unknown>;
  return rest;
}

/** Where `host init` put HAProxy's exporter (router.json), as host:port. */
async function haproxyExporterAddress(stateDir: string): Promise<string> {
  return new URL((await Router.open(stateDir)).metricsUrl()).host;
}
