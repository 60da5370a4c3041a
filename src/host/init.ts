import { chmod, lchown, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Engine } from "../engine/engine.js";
import { effectiveRunAs, haproxyBinary, systemctl } from "../router/process.js";
import { Router } from "../router/router.js";
import { BindAddress, type RouterSettingsInput } from "../router/schema.js";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile } from "../util/fs.js";
import type { Reporter } from "../util/progress.js";
import { assertSafeStateDir } from "../util/state-dir.js";
import { hasSystemd, renderUnit, UNIT_DIR } from "./systemd.js";

export interface HostInitOptions {
  stateDir: string;
  edgePort?: number;
  edgeBind?: string;
  metricsPort?: number;
  /** Group allowed on the runtime API socket; default: the sudo caller's group when run via sudo. */
  socketGroup?: string;
  /** Default: systemd when it is PID 1, else a detached `haproxy -D`. */
  supervisor?: "daemon" | "systemd";
  /** Pinning by header on/off (undefined: as before; `pinHeader` alone turns it on). */
  pin?: boolean;
  /** Header naming the version of a pinned request (docs/pinning.md). */
  pinHeader?: string;
}

export interface HostInitResult {
  stateDir: string;
  edgeUrl: string;
  metricsUrl: string;
  configPath: string;
  supervisor: "daemon" | "systemd";
  unitPath?: string;
  haproxyPid: number;
  engine: string;
}

/**
 * Sets up the host: state dir, router settings, HAProxy config, HAProxy running under something that
 * outlives this process (systemd unit when available, else a detached daemon), engine reachable.
 * Idempotent: re-running with other ports rewrites the config and reloads seamlessly.
 */
export async function initHost(options: HostInitOptions, reporter: Reporter): Promise<HostInitResult> {
  const stateDir = options.stateDir;
  if (options.edgeBind !== undefined) parseBind(options.edgeBind, "--edge-bind");
  await reporter.step(
    "Preparing state dir",
    async () => {
      // A dir someone else prepared (their owner, or writable by others) is refused, never adopted:
      // its files would be run by us (and under sudo, by root).
      await assertSafeStateDir(stateDir);
      const existed = await stat(stateDir).then(
        () => true,
        () => false,
      );
      await mkdir(stateDir, { recursive: true, mode: 0o750 });
      if (!existed) await chmod(stateDir, 0o750);
      await mkdir(join(stateDir, "haproxy"), { recursive: true, mode: 0o750 });
      await assertSafeStateDir(stateDir);
    },
    () => stateDir,
  );

  const supervisor = options.supervisor ?? ((await hasSystemd()) ? "systemd" : "daemon");
  const overrides: Partial<RouterSettingsInput> = { supervisor };
  const existing = await Router.open(stateDir);
  if (options.edgePort !== undefined || options.edgeBind !== undefined)
    overrides.edge = {
      bind: options.edgeBind ?? existing.settings.edge.bind,
      port: options.edgePort ?? existing.settings.edge.port,
    };
  if (options.metricsPort !== undefined)
    overrides.metrics = { bind: existing.settings.metrics.bind, port: options.metricsPort };
  if (options.pin !== undefined || options.pinHeader !== undefined)
    overrides.pin = {
      enabled: options.pin ?? true,
      header: options.pinHeader ?? existing.settings.pin.header,
    };
  const sudoUid = process.getuid?.() === 0 ? Number(process.env.SUDO_UID) : Number.NaN;
  const sudoGid = process.getuid?.() === 0 ? Number(process.env.SUDO_GID) : Number.NaN;
  const socketGroup = options.socketGroup ?? (Number.isInteger(sudoGid) ? String(sudoGid) : undefined);
  if (socketGroup !== undefined) overrides.socketGroup = socketGroup;
  // As root, HAProxy drops to the `haproxy` account after binding; persisted so a later reload by
  // systemd (or another user) renders the same `user`/`group`.
  if (existing.settings.runAs === undefined) {
    const runAs = await effectiveRunAs(existing.settings);
    if (runAs) overrides.runAs = runAs;
  }
  const router = await Router.open(stateDir, overrides);

  await reporter.step(
    "Writing HAProxy config",
    async () => {
      await router.saveSettings();
      await router.writeConfig(await router.readDesired());
      // `sudo modelship host init` hands the state dir to the user who will deploy (the CI runner);
      // HAProxy itself may keep running as root.
      if (Number.isInteger(sudoUid) && Number.isInteger(sudoGid)) {
        for (const path of [stateDir, join(stateDir, "haproxy"), router.paths.settings, router.paths.config])
          await lchown(path, sudoUid, sudoGid);
      }
    },
    () => router.paths.config,
  );

  let unitPath: string | undefined;
  if (supervisor === "systemd") {
    unitPath = join(UNIT_DIR, router.settings.systemdUnit);
    const path = unitPath;
    await reporter.step(
      "Installing systemd unit",
      async () => {
        await atomicWriteFile(path, renderUnit(router.settings, await haproxyBinary()));
        await systemctl("daemon-reload");
        await systemctl("enable", router.settings.systemdUnit);
      },
      () => path,
    );
  }

  const pid = await reporter.step(
    "Starting HAProxy",
    async () => {
      const live = await router.running();
      if (live && (await router.answers())) return (await router.reload()).pid;
      return (await router.ensureRunning()).pid;
    },
    (p) => `pid ${p}, edge ${router.edgeUrl()}, metrics ${router.metricsUrl()}`,
  );

  const engine = await reporter.step(
    "Checking container engine",
    async () => {
      const info = await new Engine().info();
      return `${info.server} ${info.serverVersion} at ${info.host}`;
    },
    (d) => d,
  );

  return {
    stateDir,
    edgeUrl: router.edgeUrl(),
    metricsUrl: router.metricsUrl(),
    configPath: router.paths.config,
    supervisor,
    ...(unitPath ? { unitPath } : {}),
    haproxyPid: pid,
    engine,
  };
}

export function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UserError(`${flag} must be a port number 1–65535, got '${value}'`, {
      exitCode: ExitCode.usage,
    });
  return n;
}

/** `--edge-bind` and friends: an IP address, host name or `*` — nothing that could carry a directive. */
export function parseBind(value: string, flag: string): string {
  const parsed = BindAddress.safeParse(value);
  if (!parsed.success)
    throw new UserError(
      `${flag} must be an IP address, a host name or '*', got ${JSON.stringify(value).slice(0, 80)}`,
      { exitCode: ExitCode.usage },
    );
  return parsed.data;
}
