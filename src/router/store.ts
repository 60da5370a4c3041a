import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import lockfile from "proper-lockfile";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteJson } from "../util/fs.js";
import { assertSafeStateDir } from "../util/state-dir.js";
import { type RouterPaths, routerPaths } from "./config.js";
import { RouterDesired, RouterSettings, type RouterSettingsInput } from "./schema.js";
import { type CounterCarry, counterCarrySchema, emptyCarry } from "./stats.js";

/**
 * The router's files in the state dir: settings (router.json, written by `host init`), the desired
 * state (router-desired.json: the servers we want, from which haproxy.cfg is rendered), the counter
 * carry across reloads, and the lock that serialises changes. Everything read back is parsed with the
 * same strict schema as on input: a tampered file is refused, never rendered into the config.
 */

/** `haproxyBin` was once stored in router.json; executables now come from system dirs only. */
const LEGACY_HAPROXY_BIN = "/usr/sbin/haproxy";

/** Settings from `<stateDir>/router.json` with `overrides` on top, strictly validated. */
export async function loadRouterSettings(
  stateDir: string,
  overrides: Partial<RouterSettingsInput> = {},
): Promise<RouterSettings> {
  await assertSafeStateDir(stateDir);
  const file = routerPaths(stateDir).settings;
  const saved = await readJson(file);
  const base = saved && typeof saved === "object" ? { ...(saved as Record<string, unknown>) } : {};
  if ("haproxyBin" in base) {
    if (base.haproxyBin !== LEGACY_HAPROXY_BIN)
      throw new UserError(
        `${file} sets haproxyBin=${JSON.stringify(base.haproxyBin)}: modelship runs haproxy only from system directories, never from a path in the state dir`,
        { exitCode: ExitCode.usage, hint: "remove the haproxyBin key (install HAProxy under /usr/sbin)" },
      );
    delete base.haproxyBin;
  }
  // The file alone first, so a tampered or corrupt router.json is named as the culprit.
  const fromFile = RouterSettings.safeParse({ ...base, stateDir });
  if (!fromFile.success)
    throw new UserError(`invalid router settings in ${file}: ${issues(fromFile.error)}`, {
      exitCode: ExitCode.usage,
      hint: "fix or delete it and run `modelship host init`",
    });
  const parsed = RouterSettings.safeParse({ ...base, ...stripUndefined(overrides), stateDir });
  if (!parsed.success)
    throw new UserError(`invalid router settings: ${issues(parsed.error)}`, { exitCode: ExitCode.usage });
  return parsed.data;
}

export function issues(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  return error.issues
    .map((i) => (i.path.length > 0 ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

export class RouterStore {
  readonly paths: RouterPaths;

  constructor(readonly settings: RouterSettings) {
    this.paths = routerPaths(settings.stateDir);
  }

  async saveSettings(): Promise<void> {
    await atomicWriteJson(this.paths.settings, this.settings);
  }

  /** The last desired state written (empty when none yet). */
  async readDesired(): Promise<RouterDesired> {
    const raw = await readJson(this.paths.desired);
    if (raw === undefined) return { servers: [] };
    const parsed = RouterDesired.safeParse(raw);
    if (!parsed.success) {
      throw new UserError(`corrupt router state ${this.paths.desired}: ${issues(parsed.error)}`, {
        exitCode: ExitCode.environment,
        hint: "delete it and re-run the deploy or `modelship host repair`",
      });
    }
    return parsed.data;
  }

  async writeDesired(desired: RouterDesired): Promise<void> {
    await atomicWriteJson(this.paths.desired, desired);
  }

  async readCarry(): Promise<CounterCarry> {
    const text = await readFile(this.paths.counterCarry, "utf8").catch(() => undefined);
    if (text === undefined) return emptyCarry();
    try {
      return counterCarrySchema.parse(JSON.parse(text));
    } catch {
      return emptyCarry(); // a damaged carry only costs pre-reload history, never a deploy
    }
  }

  async writeCarry(carry: CounterCarry): Promise<void> {
    await atomicWriteJson(this.paths.counterCarry, carry);
  }

  async clearCarry(): Promise<void> {
    await rm(this.paths.counterCarry, { force: true });
  }

  /** Runs `fn` holding the router lock (one change at a time across processes). */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(dirname(this.paths.config), { recursive: true, mode: 0o750 });
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.paths.lock, {
        realpath: false,
        stale: 15_000,
        retries: { retries: 100, minTimeout: 20, maxTimeout: 200 },
      });
    } catch (err) {
      throw new UserError(
        `the router state is locked by another modelship process (${this.paths.lock}.lock)`,
        { exitCode: ExitCode.busy, cause: err },
      );
    }
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${path} is not valid JSON`, { exitCode: ExitCode.environment });
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
