import { z } from "zod";
import { BindAddress, SafePath, UnitName } from "../router/schema.js";

/**
 * Settings of the host's Prometheus, kept in `<stateDir>/monitoring.json` so a re-run of
 * `host init --monitoring` (or a restart) reproduces the same listen address and intervals.
 */
const Port = z.number().int().min(1).max(65535);
/** Prometheus duration: one or more <number><unit> parts ("15s", "1m30s"). */
export const PromDuration = z
  .string()
  .regex(/^(\d+(ms|s|m|h|d|w|y))+$/, "a Prometheus duration like 15s, 1m or 1h30m");

export const MonitoringSettings = z.strictObject({
  stateDir: SafePath,
  /**
   * Executables: never read from monitoring.json (a file the state dir's owner can write). Default: the
   * root-owned system copy (/usr/bin/prometheus); an in-process caller may pass another.
   */
  prometheusBin: SafePath.default("/usr/bin/prometheus"),
  promtoolBin: SafePath.default("/usr/bin/promtool"),
  listen: z.strictObject({ bind: BindAddress.default("127.0.0.1"), port: Port.default(9090) }).prefault({}),
  scrapeInterval: PromDuration.default("15s"),
  evaluationInterval: PromDuration.default("15s"),
  retention: PromDuration.default("15d"),
  /**
   * Divide every rule window and `for:` by 30 (5m → 10s): alerts fire within seconds. For demos and
   * tests, with a ~1s scrape interval; never on a real host.
   */
  fast: z.boolean().default(false),
  /** "daemon": a detached `prometheus` we start; "systemd": the host's unit owns it (survives CI jobs). */
  supervisor: z.enum(["daemon", "systemd"]).default("daemon"),
  systemdUnit: UnitName.default("modelship-prometheus.service"),
});
export type MonitoringSettings = z.infer<typeof MonitoringSettings>;
export type MonitoringSettingsInput = z.input<typeof MonitoringSettings>;

export const ROLES_SCRAPED = ["stable", "canary", "standby"] as const;

/** One file_sd entry: a model container's direct port with the ledger's view of it as labels. */
export const ScrapeTarget = z.object({
  /** host:port of the container's published port. */
  address: z.string().regex(/^[A-Za-z0-9.:_[\]-]+:\d{1,5}$/, "address must be host:port"),
  version: z.string().min(1),
  role: z.enum(ROLES_SCRAPED),
  /** Model sha256 the ledger recorded; absent when it does not know (the mismatch alert then checks the version only). */
  sha256: z.string().min(1).optional(),
});
export type ScrapeTarget = z.infer<typeof ScrapeTarget>;

/** The file_sd JSON format Prometheus reads. */
export const FileSdGroup = z.object({
  targets: z.array(z.string()),
  labels: z.record(z.string(), z.string()).default({}),
});
export const FileSdFile = z.array(FileSdGroup);
export type FileSdFile = z.infer<typeof FileSdFile>;
