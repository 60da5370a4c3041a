import ora, { type Ora } from "ora";
import { pc } from "./colors.js";
import { safeText } from "./text.js";

export type ReporterMode = "human" | "json" | "silent";

export interface StepEvent {
  type: "step";
  title: string;
  status: "ok" | "fail";
  ms: number;
  detail?: string;
}

/**
 * Progress for long work. Human mode: a spinner on a TTY, plain step lines otherwise (CI logs stay
 * readable). JSON mode: nothing on stdout but NDJSON events from `event()`, so `--json` output parses.
 */
export class Reporter {
  readonly mode: ReporterMode;
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(mode: ReporterMode = "human", out: NodeJS.WriteStream = process.stdout) {
    this.mode = mode;
    this.out = out;
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  /** Runs `fn` as one step: "title... ✓ (detail, 1.2s)" or "title... ✗ reason". */
  async step<T>(
    title: string,
    fn: (update: (text: string) => void) => Promise<T>,
    detail?: (result: T) => string,
  ): Promise<T> {
    const started = performance.now();
    let spinner: Ora | undefined;
    if (this.mode === "human" && this.tty) spinner = ora({ text: `${title}...`, stream: this.out }).start();
    const update = (text: string) => {
      if (spinner) spinner.text = `${title}... ${pc.dim(safeText(text))}`;
    };
    try {
      const result = await fn(update);
      const ms = performance.now() - started;
      const extra = detail ? detail(result) : undefined;
      this.finish(spinner, title, "ok", ms, extra);
      return result;
    } catch (err) {
      const ms = performance.now() - started;
      this.finish(spinner, title, "fail", ms, err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  private finish(
    spinner: Ora | undefined,
    title: string,
    status: "ok" | "fail",
    ms: number,
    detail?: string,
  ) {
    if (this.mode === "json") {
      this.event({ type: "step", title, status, ms: Math.round(ms), ...(detail ? { detail } : {}) });
      return;
    }
    if (this.mode === "silent") return;
    const mark = status === "ok" ? pc.green("✓") : pc.red("✗");
    // Details and failure reasons carry outside text (labels, container output): cleaned here, once.
    detail = detail === undefined ? undefined : safeText(detail, { multiline: true });
    const time = pc.dim(`(${formatDuration(ms)})`);
    // Details and failure reasons carry outside text (labels, container output): cleaned here, once.
    const line = `${title}... ${mark}${detail ? ` ${safeText(detail, { multiline: true })}` : ""} ${time}`;
    if (spinner) {
      spinner.stop();
    }
    this.out.write(`${line}\n`);
  }

  /** A plain line for humans (suppressed in JSON mode). */
  info(message: string): void {
    if (this.mode === "human") this.out.write(`${safeText(message, { multiline: true })}\n`);
  }

  warn(message: string): void {
    if (this.mode === "human")
      process.stderr.write(`${pc.yellow("!")} ${safeText(message, { multiline: true })}\n`);
    else if (this.mode === "json") this.event({ type: "warning", message });
  }

  private readonly listeners: ((payload: Record<string, unknown>) => void)[] = [];

  /** Also hands every event to `fn` (in any mode), e.g. to mirror the shadow verdict elsewhere. */
  listen(fn: (payload: Record<string, unknown>) => void): this {
    this.listeners.push(fn);
    return this;
  }

  /** A machine-readable event: one JSON line on stdout in JSON mode. */
  event(payload: Record<string, unknown>): void {
    for (const fn of this.listeners) fn(payload);
    if (this.mode === "json")
      this.out.write(`${JSON.stringify({ ts: new Date().toISOString(), ...payload })}\n`);
  }
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** Renders rows as an aligned plain-text table (for terminals). */
export function textTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [fmt(cells[0]!), widths.map((w) => "─".repeat(w)).join("  "), ...cells.slice(1).map(fmt)].join("\n");
}
