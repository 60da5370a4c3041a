import { spawn } from "node:child_process";
import { realpath, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";

/**
 * The one place modelship runs other programs (haproxy, promtool, prometheus, git, docker, systemctl,
 * our own CLI). No shell is involved: arguments are passed as a vector, never interpolated.
 */

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, then stdin is closed (default: stdin closed at once). */
  input?: string;
  /** SIGKILL after this long; the result then has `timedOut: true`. */
  timeoutMs?: number;
  /** Called for every stdout/stderr line as it arrives (the text is collected as well). */
  onLine?: (line: string) => void;
  /** Cap on collected stdout/stderr each (default 16 MiB); beyond it the output is truncated. */
  maxBuffer?: number;
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** The program could not be started at all (ENOENT, EACCES, …). */
export class CommandNotFound extends Error {
  readonly bin: string;
  readonly code: string | undefined;
  constructor(bin: string, cause: NodeJS.ErrnoException) {
    super(`cannot run ${bin}: ${cause.code ?? cause.message}`);
    this.bin = bin;
    this.code = cause.code;
  }
}

/** A program ran and exited non-zero (or was killed); its output is attached. */
export class CommandFailed extends Error {
  readonly bin: string;
  readonly args: string[];
  readonly result: CommandResult;
  constructor(bin: string, args: string[], result: CommandResult) {
    const why = result.timedOut
      ? "timed out"
      : result.signal
        ? `killed by ${result.signal}`
        : `exit code ${result.code}`;
    super(`${bin} ${args.join(" ")} failed (${why})${tail(result) ? `: ${tail(result)}` : ""}`);
    this.bin = bin;
    this.args = args;
    this.result = result;
  }
  get stderr(): string {
    return this.result.stderr;
  }
  get stdout(): string {
    return this.result.stdout;
  }
}

/** Last non-empty line of stderr (else stdout): what a failing tool usually says about why. */
export function tail(result: Pick<CommandResult, "stdout" | "stderr">): string {
  const lines = `${result.stderr}\n${result.stdout}`.split("\n").map((l) => l.trim());
  const stderrLines = result.stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return stderrLines.at(-1) ?? lines.filter(Boolean).at(-1) ?? "";
}

/**
 * Runs `bin args` to completion. Resolves with the exit status for any exit (callers decide what a
 * non-zero code means); rejects only with CommandNotFound when it cannot start.
 */
export function runCommand(
  bin: string,
  args: string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const maxBuffer = options.maxBuffer ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: options.env ?? process.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const add = (which: "out" | "err", text: string) => {
      if (which === "out") stdout = (stdout + text).slice(0, maxBuffer);
      else stderr = (stderr + text).slice(0, maxBuffer);
    };
    const timer =
      options.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs)
        : undefined;
    if (options.onLine) {
      const onLine = options.onLine;
      createInterface({ input: child.stdout }).on("line", (l) => {
        add("out", `${l}\n`);
        onLine(l);
      });
      createInterface({ input: child.stderr }).on("line", (l) => {
        add("err", `${l}\n`);
        onLine(l);
      });
    } else {
      child.stdout.on("data", (d: Buffer) => add("out", d.toString()));
      child.stderr.on("data", (d: Buffer) => add("err", d.toString()));
    }
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      reject(new CommandNotFound(bin, err));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on("error", () => {}); // the program may exit without reading its input
    child.stdin.end(options.input ?? "");
  });
}

/** Like runCommand, but a non-zero exit (or timeout) rejects with CommandFailed. */
export async function runChecked(
  bin: string,
  args: string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const result = await runCommand(bin, args, options);
  if (result.code !== 0 || result.timedOut) throw new CommandFailed(bin, args, result);
  return result;
}

export interface DetachedProcess {
  pid: number;
  /** undefined while it runs; its exit code (or null when killed by a signal) once it exited. */
  exitCode(): number | null | undefined;
}

/**
 * Starts a long-running program in its own session (survives this process), output to `logFd`
 * (default: discarded). Resolves once it has been spawned.
 */
export async function startDetached(
  bin: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; logFd?: number } = {},
): Promise<DetachedProcess> {
  const out = options.logFd ?? "ignore";
  const child = spawn(bin, args, {
    detached: true,
    env: options.env ?? process.env,
    stdio: ["ignore", out, out],
  });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once("spawn", () => resolve(child.pid!));
    child.once("error", (err: NodeJS.ErrnoException) => reject(new CommandNotFound(bin, err)));
  });
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  child.unref();
  return { pid, exitCode: () => exited };
}

/**
 * Directories executables are taken from when modelship runs them on the host's behalf (haproxy,
 * prometheus, promtool, systemctl): fixed system locations, never a path from a file in the state dir
 * (which a less-privileged user may write).
 */
export const SYSTEM_BIN_DIRS = [
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/sbin",
  "/usr/bin",
  "/sbin",
  "/bin",
];

/**
 * The first `name` in SYSTEM_BIN_DIRS that is a regular file owned by root and not writable by group or
 * others, in a directory chain with the same property (so nobody but root can swap it). undefined when
 * there is none.
 */
export async function systemExecutable(name: string, dirs = SYSTEM_BIN_DIRS): Promise<string | undefined> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(name)) return undefined;
  for (const dir of dirs) {
    const path = join(dir, name);
    const s = await stat(path).catch(() => undefined);
    if (!s?.isFile() || (s.mode & 0o111) === 0) continue;
    if (await rootOwnedChain(path)) return path;
  }
  return undefined;
}

/** True when `path` (symlinks resolved) and every parent directory are root-owned and not group/other writable. */
export async function rootOwnedChain(path: string): Promise<boolean> {
  const real = await realpath(path).catch(() => undefined);
  if (real === undefined) return false;
  let p = real;
  for (;;) {
    const s = await stat(p).catch(() => undefined);
    if (s?.uid !== 0 || (s.mode & 0o022) !== 0) return false;
    const parent = dirname(p);
    if (parent === p) return true;
    p = parent;
  }
}
