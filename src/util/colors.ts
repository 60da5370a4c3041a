import picocolors from "picocolors";

/**
 * Colours only for a terminal (or when FORCE_COLOR asks): picocolors alone also colours whenever
 * `CI` is set, which puts escape codes into logs and `--json`-less output that scripts grep.
 */
function wantColor(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== "0";
  if (env.NO_COLOR !== undefined) return false;
  return Boolean(process.stdout.isTTY) && env.TERM !== "dumb";
}

export const pc = picocolors.createColors(wantColor());
