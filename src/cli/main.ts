import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { resolveStateDir } from "../ledger/ledger.js";
import { describeError, ExitCode, isUserError } from "../util/errors.js";
import { assertSafeStateDir } from "../util/state-dir.js";
import { commands } from "./commands/index.js";
import { packageRoot } from "./demo/run.js";

/** The installed package's version (package.json next to bin/), "0.0.0" when it cannot be read. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

export function buildProgram(): Command {
  const program = new Command("modelship")
    .description("Ship ML models from a commit to canaried, monitored containers on one host.")
    .version(packageVersion(), "-V, --version", "print the modelship version")
    .option("--debug", "show stack traces for unexpected errors")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  for (const register of commands) register(program);
  // Every command that works on a state dir refuses one another (less privileged) user could have
  // prepared, before it reads anything from it (docs/security.md).
  program.hook("preAction", async (_program, action) => {
    if (action.name() === "demo" || !action.options.some((o) => o.attributeName() === "stateDir")) return;
    const flag = action.opts<{ stateDir?: string }>().stateDir;
    await assertSafeStateDir(resolveStateDir(flag));
  });
  program.addHelpText(
    "after",
    "\nExit codes: 0 ok · 1 check failed / rollout aborted · 2 usage, config or input error · 3 environment (engine, HAProxy, permissions) · 4 busy (another deploy holds the lock)",
  );
  return program;
}

/** Parses argv and runs; returns the exit code instead of exiting so tests can call it. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help/version exit 0; everything else commander rejects is a usage error (already printed)
      return err.exitCode === 0 ? 0 : ExitCode.usage;
    }
    const debug = argv.includes("--debug");
    process.stderr.write(`modelship: ${describeError(err, debug)}\n`);
    return isUserError(err) ? err.exitCode : ExitCode.failed;
  }
}

const invokedDirectly = (() => {
  try {
    return realpathSync(process.argv[1] ?? "") === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly || process.env.MODELSHIP_CLI_ENTRY === "1") {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
