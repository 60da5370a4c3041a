import { randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { homedir, hostname, userInfo } from "node:os";
import { join, resolve } from "node:path";
import lockfile from "proper-lockfile";
import { z } from "zod";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile, atomicWriteJson } from "../util/fs.js";
import { pidAlive } from "../util/process.js";
import {
  describePhase,
  emptyLedger,
  type HistoryEvent,
  type LedgerData,
  ledgerSchema,
  type Operation,
  type OperationKind,
  type PhaseRecord,
} from "./schema.js";

export const LEDGER_FILE = "ledger.json";
/** The previous good ledger, written before every replace: the first thing repair falls back to. */
export const BACKUP_FILE = "ledger.json.bak";
const LOCK_DIR = "operation.lock";
/**
 * Who holds the lock, next to (not inside) the lock dir: writing inside it would change the dir's mtime,
 * which proper-lockfile reads as a compromised lock. The lock dir's inode ties the record to one lock.
 */
const OWNER_FILE = "operation.owner.json";
const HISTORY_LIMIT = 500;

/**
 * Where the ledger lives: `--state-dir`, else `MODELSHIP_STATE_DIR`, else `/var/lib/modelship` for root
 * and `~/.modelship` for everyone else.
 */
export function resolveStateDir(flag?: string): string {
  if (flag) return resolve(flag);
  const env = process.env.MODELSHIP_STATE_DIR;
  if (env) return resolve(env);
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  return root ? "/var/lib/modelship" : join(homedir(), ".modelship");
}

const ownerSchema = z.object({
  pid: z.number().int(),
  host: z.string(),
  kind: z.string(),
  since: z.string(),
  target: z.string().optional(),
  lockIno: z.number(),
});
type Owner = z.infer<typeof ownerSchema>;

export interface BeginOptions {
  /** Wait for a running operation to finish instead of refusing. */
  wait?: boolean;
  waitTimeoutMs?: number;
  target?: string;
  by?: string;
  /** Poll interval while waiting (tests shorten it). */
  pollMs?: number;
  /** How often the lock's mtime is refreshed (proper-lockfile `update`; tests shorten it). */
  lockUpdateMs?: number;
  /**
   * Called after every ledger write of this operation (e.g. to keep Prometheus targets in step).
   * Its failures never fail the operation: the ledger is the source of truth.
   */
  onChange?: (ledger: LedgerData) => Promise<unknown>;
}

export function currentUser(): string {
  return process.env.GITHUB_ACTOR ?? process.env.USER ?? safeUsername();
}

function safeUsername(): string {
  try {
    return userInfo().username;
  } catch {
    return "unknown";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Ledger {
  readonly stateDir: string;
  readonly file: string;

  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.file = join(stateDir, LEDGER_FILE);
  }

  /** The ledger as on disk; a missing file is an empty ledger, a broken one a clear error. */
  async read(): Promise<LedgerData> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return emptyLedger();
      throw new UserError(`cannot read the deploy ledger ${this.file}: ${(err as Error).message}`, {
        exitCode: ExitCode.environment,
        hint: "check the state dir's permissions (or pass --state-dir)",
      });
    }
    const problem = parseProblem(text);
    if (typeof problem === "string") {
      throw new UserError(`the deploy ledger ${this.file} is corrupt (${problem})`, {
        exitCode: ExitCode.environment,
        hint: "run `modelship host repair` to restore it from the backup and the running containers",
      });
    }
    return problem;
  }

  /** Replace the ledger (keeping the previous version as the backup). Callers hold the operation lock. */
  async write(data: LedgerData): Promise<LedgerData> {
    const next = ledgerSchema.parse({
      ...data,
      updatedAt: new Date().toISOString(),
      history: data.history.slice(-HISTORY_LIMIT),
    });
    try {
      const current = await readFile(this.file, "utf8");
      if (typeof parseProblem(current) !== "string")
        await atomicWriteFile(join(this.stateDir, BACKUP_FILE), current);
    } catch {
      // no previous ledger: nothing to back up
    }
    await atomicWriteJson(this.file, next);
    return next;
  }

  /** Who holds the operation lock right now (undefined when free, or when the record is not this lock's). */
  async lockOwner(): Promise<Owner | undefined> {
    try {
      const raw = JSON.parse(await readFile(join(this.stateDir, OWNER_FILE), "utf8"));
      const parsed = ownerSchema.safeParse(raw);
      if (!parsed.success) return undefined;
      const lock = await stat(this.lockPath);
      return lock.ino === parsed.data.lockIno ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  async isLocked(): Promise<boolean> {
    try {
      return await lockfile.check(this.stateDir, {
        lockfilePath: this.lockPath,
        realpath: false,
        stale: 60_000,
      });
    } catch {
      return false;
    }
  }

  private get lockPath(): string {
    return join(this.stateDir, LOCK_DIR);
  }

  /**
   * Takes the host-wide operation lock (one deploy/rollback/repair at a time) and records the operation
   * in the ledger, so a crash leaves a visible trace. A lock left by a dead process on this host is
   * broken at once; a live holder means refusal (exit 4) unless `wait` is set.
   */
  async begin(kind: OperationKind, options: BeginOptions = {}): Promise<OperationHandle> {
    const started = Date.now();
    const timeout = options.waitTimeoutMs ?? 30 * 60_000;
    const pollMs = options.pollMs ?? 500;
    await atomicWriteFile(join(this.stateDir, ".keep"), "");
    for (;;) {
      let release: (() => Promise<void>) | undefined;
      try {
        release = await lockfile.lock(this.stateDir, {
          lockfilePath: this.lockPath,
          realpath: false,
          stale: 60_000,
          update: options.lockUpdateMs ?? 10_000,
          // A long event-loop stall must not crash a rollout midway; the ledger stays consistent.
          onCompromised: () => {},
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ELOCKED" && code !== "ENOTEMPTY") {
          throw new UserError(`cannot take the deploy lock in ${this.stateDir}: ${(err as Error).message}`, {
            exitCode: ExitCode.environment,
            hint: "check the state dir's permissions (or pass --state-dir)",
          });
        }
        const owner = await this.lockOwner();
        if (owner && owner.host === hostname() && !pidAlive(owner.pid)) {
          // The holder died (kill -9, runner ended the job): its lock protects nothing any more.
          await rm(this.lockPath, { recursive: true, force: true });
          continue;
        }
        const who = owner
          ? `${owner.kind}${owner.target ? ` of ${owner.target}` : ""} by pid ${owner.pid} on ${owner.host} since ${owner.since}`
          : "another modelship operation";
        if (!options.wait) {
          throw new UserError(`another operation is in progress (${who})`, {
            exitCode: ExitCode.busy,
            hint: "wait for it to finish, or pass --wait to queue behind it",
          });
        }
        if (Date.now() - started > timeout) {
          throw new UserError(`gave up waiting after ${Math.round(timeout / 1000)}s for ${who}`, {
            exitCode: ExitCode.busy,
          });
        }
        await sleep(pollMs);
        continue;
      }
      const since = new Date().toISOString();
      const lockIno = (await stat(this.lockPath)).ino;
      const owner: Owner = {
        pid: process.pid,
        host: hostname(),
        kind,
        since,
        target: options.target,
        lockIno,
      };
      await atomicWriteJson(join(this.stateDir, OWNER_FILE), owner);
      const handle = new OperationHandle(this, release, options.onChange, {
        id: `${kind}-${since.replace(/[-:.TZ]/g, "").slice(0, 14)}-${randomBytes(3).toString("hex")}`,
        kind,
        pid: process.pid,
        host: hostname(),
        startedAt: since,
        step: "started",
        phase: { name: "started" },
        target: options.target,
        by: options.by,
      });
      try {
        await handle.init();
      } catch (err) {
        await handle.release();
        throw err;
      }
      return handle;
    }
  }

  /**
   * Makes the ledger readable again: a corrupt file is moved aside and replaced by the backup (or an
   * empty ledger); stray temp files are removed. The caller then reconciles with the running containers.
   */
  async repairFile(): Promise<{ ledger: LedgerData; actions: string[] }> {
    const actions: string[] = [];
    for (const name of await readdir(this.stateDir).catch(() => [] as string[])) {
      if (/^\.[0-9a-f]{12}\.tmp$/.test(name)) {
        await rm(join(this.stateDir, name), { force: true });
        actions.push(`removed stray temp file ${name}`);
      }
    }
    let text: string | undefined;
    try {
      text = await readFile(this.file, "utf8");
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const parsed = parseProblem(text);
      if (typeof parsed !== "string") return { ledger: parsed, actions };
      const aside = `${this.file}.corrupt-${Date.now()}`;
      await rename(this.file, aside);
      actions.push(`moved the corrupt ledger (${parsed}) to ${aside}`);
    }
    let restored: LedgerData | undefined;
    try {
      const backup = parseProblem(await readFile(join(this.stateDir, BACKUP_FILE), "utf8"));
      if (typeof backup !== "string") restored = backup;
    } catch {
      restored = undefined;
    }
    if (restored) actions.push(`restored the ledger from ${BACKUP_FILE} (written ${restored.updatedAt})`);
    else if (text !== undefined)
      actions.push("no usable backup: the ledger is rebuilt from the containers the edge routes to");
    // Without a backup nothing is written here: an absent ledger reads as empty, and repair then
    // rebuilds it from what runs (or refuses, leaving the edge as it is).
    if (restored) await atomicWriteJson(this.file, restored);
    return { ledger: restored ?? emptyLedger(), actions };
  }
}

/** Returns the parsed ledger, or a one-line description of what is wrong with the text. */
function parseProblem(text: string): LedgerData | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  const parsed = ledgerSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `${issue?.path.join(".") || "root"}: ${issue?.message ?? "invalid"}`;
  }
  return parsed.data;
}

/** A held operation lock: all ledger mutations of a deploy/rollback/repair go through it. */
export class OperationHandle {
  readonly ledger: Ledger;
  readonly operation: Operation;
  /** The operation a crashed process left behind, if any (found when this one began). */
  interrupted: Operation | null = null;
  private releaseLock: (() => Promise<void>) | undefined;
  private readonly onChange: BeginOptions["onChange"];

  constructor(
    ledger: Ledger,
    release: () => Promise<void>,
    onChange: BeginOptions["onChange"],
    operation: Operation,
  ) {
    this.ledger = ledger;
    this.releaseLock = release;
    this.onChange = onChange;
    this.operation = operation;
  }

  async init(): Promise<void> {
    await this.update((l) => {
      if (l.operation) {
        this.interrupted = l.operation;
        l.history.push({
          at: new Date().toISOString(),
          kind: "interrupted",
          version: l.operation.target,
          reason: `${l.operation.kind} (pid ${l.operation.pid}) stopped at "${l.operation.step}"`,
        });
      }
      l.operation = this.operation;
    });
  }

  /** Read-modify-write of the ledger; `fn` mutates the draft in place. */
  async update(fn: (draft: LedgerData) => void): Promise<LedgerData> {
    if (!this.releaseLock) throw new Error("operation already finished");
    const draft = await this.ledger.read();
    fn(draft);
    const written = await this.ledger.write(draft);
    await this.onChange?.(written).catch(() => {});
    return written;
  }

  /** Records the phase the operation enters, before it acts (what `status` and repair read after a crash). */
  async advance(phase: PhaseRecord): Promise<void> {
    const step = describePhase(phase);
    this.operation.step = step;
    this.operation.phase = phase;
    await this.update((l) => {
      if (l.operation?.id === this.operation.id) Object.assign(l.operation, { step, phase });
    });
  }

  async event(event: Omit<HistoryEvent, "at">): Promise<void> {
    await this.update((l) => {
      l.history.push({ at: new Date().toISOString(), ...event });
    });
  }

  /**
   * Clears the operation from the ledger and releases the lock. The backup then becomes the finished
   * state too: restoring it later must not bring back an operation that in fact completed.
   */
  async finish(): Promise<void> {
    if (!this.releaseLock) return;
    const done = await this.update((l) => {
      if (l.operation?.id === this.operation.id) l.operation = null;
    });
    await atomicWriteJson(join(this.ledger.stateDir, BACKUP_FILE), done).catch(() => {});
    await this.release();
  }

  /** Releases the lock without touching the ledger (the operation stays recorded as interrupted). */
  async release(): Promise<void> {
    const release = this.releaseLock;
    this.releaseLock = undefined;
    if (!release) return;
    await rm(join(this.ledger.stateDir, OWNER_FILE), { force: true });
    await release().catch(() => {});
  }
}
