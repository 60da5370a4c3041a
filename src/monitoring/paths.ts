import { join } from "node:path";
import { findAppRoot } from "../image/context.js";

/** Files the monitoring stack keeps in the state dir (everything Prometheus reads or writes). */
export interface MonitoringPaths {
  dir: string;
  settings: string;
  config: string;
  rulesDir: string;
  rules: string;
  targetsDir: string;
  /** The file_sd file modelship writes from the ledger. */
  modelTargets: string;
  data: string;
  pidfile: string;
  log: string;
}

export function monitoringPaths(stateDir: string): MonitoringPaths {
  const dir = join(stateDir, "monitoring");
  return {
    dir,
    settings: join(stateDir, "monitoring.json"),
    config: join(dir, "prometheus.yml"),
    rulesDir: join(dir, "rules"),
    rules: join(dir, "rules", "modelship.rules.yml"),
    targetsDir: join(dir, "targets"),
    modelTargets: join(dir, "targets", "models.json"),
    data: join(dir, "data"),
    pidfile: join(dir, "prometheus.pid"),
    log: join(dir, "prometheus.log"),
  };
}

/** The shipped monitoring/ folder (config template, rules, dashboard) of this installation. */
export function assetsDir(): string {
  return join(findAppRoot(), "monitoring");
}

export const ASSET = {
  config: "prometheus.yml",
  rules: join("rules", "modelship.rules.yml"),
  dashboard: join("grafana", "modelship.json"),
} as const;
