import { createConnection } from "node:net";
import { parse } from "csv-parse/sync";
import { ExitCode, UserError } from "../util/errors.js";

/**
 * HAProxy's runtime API (the admin stats socket), one command per connection: HAProxy answers and
 * closes, so there is no prompt state to get out of sync. Commands that succeed silently answer an
 * empty line; anything else is HAProxy telling us why it refused.
 */
export class RuntimeApi {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 5_000,
  ) {}

  /** Sends one command and returns HAProxy's raw answer. Connection problems → UserError (exit 3). */
  send(command: string): Promise<string> {
    if (/[\n;]/.test(command)) throw new Error(`runtime API command must be a single command: ${command}`);
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.socketPath);
      const chunks: Buffer[] = [];
      socket.setTimeout(this.timeoutMs, () => {
        socket.destroy();
        reject(
          new UserError(`HAProxy runtime API did not answer '${command}' within ${this.timeoutMs}ms`, {
            exitCode: ExitCode.environment,
            hint: "check HAProxy with `modelship host check`",
          }),
        );
      });
      socket.on("connect", () => socket.end(`${command}\n`));
      socket.on("data", (c) => chunks.push(c));
      socket.on("error", (err: NodeJS.ErrnoException) =>
        reject(
          new UserError(
            `cannot reach HAProxy runtime API at ${this.socketPath} (${err.code ?? err.message})`,
            {
              exitCode: ExitCode.environment,
              hint: "is HAProxy running? `modelship host check` tells, `modelship host repair` starts it",
              cause: err,
            },
          ),
        ),
      );
      socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
  }

  /**
   * Runs a command that answers nothing on success (or exactly `ok` when given); any other answer
   * is HAProxy's refusal and becomes a UserError quoting the command and the answer.
   */
  async exec(command: string, ok?: RegExp): Promise<string> {
    const answer = await this.send(command);
    const text = answer.trim();
    const accepted = ok ? ok.test(text) : text === "";
    if (!accepted) {
      throw new UserError(`HAProxy refused '${command}': ${text.replace(/\s+/g, " ") || "(no answer)"}`, {
        exitCode: ExitCode.environment,
      });
    }
    return text;
  }

  /** `show stat` for one backend's servers, as records keyed by the CSV header. */
  async showStat(backend: string): Promise<StatRow[]> {
    const answer = await this.send(`show stat ${backend} 4 -1`);
    return parseStatCsv(answer);
  }

  /** `show stat` for everything (frontends, backends, servers). */
  async showStatAll(): Promise<StatRow[]> {
    return parseStatCsv(await this.send("show stat"));
  }

  /** `show servers state <backend>`: what a reload hands over (admin state, user weight, check state). */
  async showServersState(backend: string): Promise<ServerStateRow[]> {
    return parseServersState(await this.send(`show servers state ${backend}`));
  }
}

export type StatRow = Record<string, string>;

/** The CSV header line starts with "# "; strip that so csv-parse can use it as column names. */
export function parseStatCsv(answer: string): StatRow[] {
  const text = answer.replace(/^# /, "").trim();
  if (!text.startsWith("pxname,")) {
    throw new UserError(`unexpected answer to 'show stat': ${text.slice(0, 120)}`, {
      exitCode: ExitCode.environment,
    });
  }
  return parse(text, { columns: true, skip_empty_lines: true, relax_column_count: true }) as StatRow[];
}

export interface ServerStateRow {
  backend: string;
  name: string;
  address: string;
  port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping */
  opState: number;
  /** bit field: 0x01 forced maint, 0x04 maint from config, 0x08 forced drain, … */
  adminState: number;
  userWeight: number;
}

export function parseServersState(answer: string): ServerStateRow[] {
  const lines = answer.split("\n").filter((l) => l.trim() !== "");
  const header = lines.find((l) => l.startsWith("# "));
  if (!header) {
    throw new UserError(`unexpected answer to 'show servers state': ${answer.trim().slice(0, 120)}`, {
      exitCode: ExitCode.environment,
    });
  }
  const columns = header.slice(2).trim().split(/\s+/);
  return lines
    .filter((l) => !l.startsWith("#") && /^\d+ /.test(l) && l.split(/\s+/).length > 4)
    .map((line) => {
      const values = line.trim().split(/\s+/);
      const row = Object.fromEntries(columns.map((c, i) => [c, values[i] ?? ""]));
      return {
        backend: row.be_name ?? "",
        name: row.srv_name ?? "",
        address: row.srv_addr ?? "",
        port: Number(row.srv_port),
        opState: Number(row.srv_op_state),
        adminState: Number(row.srv_admin_state),
        userWeight: Number(row.srv_uweight),
      };
    });
}
