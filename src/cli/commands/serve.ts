import type { Command } from "commander";
import { resolveSettings, SETTINGS_ENV, type ServeSettingsInput } from "../../../serving/settings.js";
import { type ReadyInfo, runServer } from "../../../serving/supervisor.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { Reporter } from "../../util/progress.js";

interface ServeFlags {
  model?: string;
  port?: string;
  host?: string;
  workers?: string;
  drainGrace?: string;
  json?: boolean;
}

function num(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n))
    throw new UserError(`${flag} must be a number, got "${value}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command("serve")
    .description(
      "Serve a model bundle over HTTP (/predict, Open Inference Protocol v2, /metrics) until SIGTERM",
    )
    .option("--model <bundle>", `model bundle directory (env ${SETTINGS_ENV.modelDir})`)
    .option("--port <n>", `port to listen on, 0 = any free port (env ${SETTINGS_ENV.port}, default 8080)`)
    .option("--host <addr>", `address to bind (env ${SETTINGS_ENV.host}, default 0.0.0.0)`)
    .option(
      "--workers <n>",
      `worker processes, one ORT session each (env ${SETTINGS_ENV.workers}, default: cores)`,
    )
    .option(
      "--drain-grace <ms>",
      `after SIGTERM, keep serving this long with readiness false (env ${SETTINGS_ENV.drainGraceMs}, default 3000)`,
    )
    .option("--json", "progress as JSON events (server logs are always JSON lines)")
    .addHelpText(
      "after",
      '\nEvery setting also reads from env (see README "Serving"); flags win. Exit: 0 drained cleanly after SIGTERM · 1 golden examples did not reproduce or a worker failed · 2 bad bundle or setting',
    )
    .action(async (flags: ServeFlags) => {
      const reporter = new Reporter(flags.json ? "json" : "human");
      const overrides: Partial<ServeSettingsInput> = {
        modelDir: flags.model,
        port: num(flags.port, "--port"),
        host: flags.host,
        workers: num(flags.workers, "--workers"),
        drainGraceMs: num(flags.drainGrace, "--drain-grace"),
      };
      const settings = resolveSettings(overrides);
      let bundleLoaded!: () => void;
      let ready!: (info: ReadyInfo) => void;
      const loaded = new Promise<void>((r) => {
        bundleLoaded = r;
      });
      const readyInfo = new Promise<ReadyInfo>((r) => {
        ready = r;
      });
      const running = runServer(settings, { onBundle: () => bundleLoaded(), onReady: (info) => ready(info) });
      // A server that stops before it is ready fails the pending step with its exit code.
      const stoppedEarly = running.then((code) => {
        throw new UserError("server stopped before it became ready (see the log above)", {
          exitCode: (code === ExitCode.ok ? ExitCode.failed : code) as ExitCode,
        });
      });
      await reporter.step(
        "Loading model bundle",
        () => Promise.race([loaded, stoppedEarly]),
        () => settings.modelDir,
      );
      const info = await reporter.step(
        `Starting ${settings.workers} worker${settings.workers === 1 ? "" : "s"} (golden examples must reproduce)`,
        () => Promise.race([readyInfo, stoppedEarly]),
        (i) => `ready on ${i.url} — ${i.card.name} ${i.card.version}`,
      );
      reporter.event({
        type: "ready",
        url: info.url,
        port: info.port,
        workers: info.workers,
        model: info.card.name,
        version: info.card.version,
        startMs: info.startMs,
      });
      stoppedEarly.catch(() => {});
      const code = await running;
      reporter.event({ type: "stopped", exitCode: code });
      if (code !== ExitCode.ok)
        throw new UserError("server stopped with errors (see the log above)", { exitCode: code as ExitCode });
    });
}
