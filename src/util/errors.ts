import { safeText } from "./text.js";

/**
 * Exit codes shared by the CLI and the actions (documented in docs/cli.md).
 * 0 ok · 1 a check failed or a rollout aborted · 2 usage/config/input error · 3 environment problem
 * (engine, HAProxy, permissions) · 4 busy (another deploy holds the lock).
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  environment: 3,
  busy: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error whose message is meant for the user as-is: one line, what is wrong and what to do. */
export class UserError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  constructor(message: string, options: { exitCode?: ExitCode; hint?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "UserError";
    this.exitCode = options.exitCode ?? ExitCode.usage;
    this.hint = options.hint;
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/** One line for humans (outside text in it cleaned of control characters); stack traces only when debugging. */
export function describeError(err: unknown, debug = false): string {
  if (isUserError(err)) {
    const line = safeText(err.hint ? `${err.message} — ${err.hint}` : err.message);
    return debug && err.stack ? `${line}\n${err.stack}` : line;
  }
  if (err instanceof Error) {
    return debug && err.stack
      ? safeText(err.stack, { multiline: true })
      : `unexpected error: ${safeText(err.message)} (run with --debug for details)`;
  }
  return `unexpected error: ${safeText(err)}`;
}

/** The first line of an error's message (trimmed), for one-line reports. */
export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0]!.trim();
}
