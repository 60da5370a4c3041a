import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./data.js";

const exec = promisify(execFile);

export interface CliResult {
  /** Exit code; -1 when the process was killed (timeout) or never started. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The real `modelship` binary (`node bin/modelship.js …`, the built dist/) as a user runs it, from the
 * repository root; never throws on a non-zero exit — tests assert the code.
 */
export async function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(
      process.execPath,
      [join(repoRoot, "bin", "modelship.js"), ...args],
      {
        cwd: options.cwd ?? repoRoot,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 32 * 1024 * 1024,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}
