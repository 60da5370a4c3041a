import { existsSync } from "node:fs";
import { chown, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { Ledger } from "../ledger/ledger.js";
import type { LedgerData } from "../ledger/schema.js";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteJson } from "../util/fs.js";
import { monitoringPaths } from "./paths.js";
import { FileSdFile, ROLES_SCRAPED, ScrapeTarget } from "./schema.js";

/**
 * Label names the targets carry onto every scraped series. Not `version`: the server's own
 * modelship_model_info{version} must stay what the server says, so the two can be compared.
 */
export const TARGET_LABEL = {
  version: "ledger_version",
  role: "ledger_role",
  sha256: "ledger_sha256",
} as const;

/** The containers the ledger says are running, as scrape targets (retired/failed ones are gone). */
export function targetsFromLedger(ledger: LedgerData): ScrapeTarget[] {
  const scraped: readonly string[] = ROLES_SCRAPED;
  return ledger.versions.flatMap((v) =>
    v.container && scraped.includes(v.role)
      ? [
          ScrapeTarget.parse({
            address: `127.0.0.1:${v.container.hostPort}`,
            version: v.version,
            role: v.role,
            ...(v.model?.sha256 ? { sha256: v.model.sha256 } : {}),
          }),
        ]
      : [],
  );
}

export function toFileSd(targets: readonly ScrapeTarget[]): FileSdFile {
  return targets.map((t) => ({
    targets: [t.address],
    labels: {
      [TARGET_LABEL.version]: t.version,
      [TARGET_LABEL.role]: t.role,
      ...(t.sha256 ? { [TARGET_LABEL.sha256]: t.sha256 } : {}),
    },
  }));
}

/**
 * Writes the file_sd file atomically (Prometheus re-reads it on change and must never see a torn
 * one), under a lock so concurrent writers cannot interleave read-ledger and write.
 */
export async function writeTargets(file: string, targets: readonly unknown[]): Promise<ScrapeTarget[]> {
  const parsed = targets.map((t, i) => {
    const r = ScrapeTarget.safeParse(t);
    if (!r.success)
      throw new UserError(
        `scrape target #${i + 1}: ${r.error.issues.map((x) => `${x.path.join(".") || "target"}: ${x.message}`).join("; ")}`,
        { exitCode: ExitCode.usage },
      );
    return r.data;
  });
  const addresses = new Set(parsed.map((t) => t.address));
  if (addresses.size !== parsed.length)
    throw new UserError("scrape targets: two targets share one address", { exitCode: ExitCode.usage });
  await atomicWriteJson(file, toFileSd(parsed));
  return parsed;
}

/** Reads a file_sd file back (e.g. to show what is scraped); a missing file is no targets. */
export async function readTargets(file: string): Promise<FileSdFile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const r = FileSdFile.safeParse(JSON.parse(text));
  if (!r.success)
    throw new UserError(`${file} is not a Prometheus file_sd target list`, { exitCode: ExitCode.usage });
  return r.data;
}

/**
 * Rewrites `<stateDir>/monitoring/targets/models.json` from the deploy ledger. Call it after every
 * ledger write (deploy, promote, abort, rollback, repair) so scraping follows the deploys.
 */
export async function syncTargets(stateDir: string): Promise<ScrapeTarget[]> {
  const paths = monitoringPaths(stateDir);
  await mkdir(paths.targetsDir, { recursive: true });
  const lockTarget = join(paths.targetsDir, ".lock-target");
  await writeFile(lockTarget, "", { flag: "a" });
  const release = await lockfile.lock(lockTarget, {
    stale: 10_000,
    retries: { retries: 50, minTimeout: 20, maxTimeout: 200 },
  });
  try {
    const ledger = await new Ledger(stateDir).read();
    return await writeTargets(paths.modelTargets, targetsFromLedger(ledger));
  } finally {
    await release();
  }
}

/** `syncTargets` on hosts where `host init --monitoring` set monitoring up; a no-op elsewhere. */
export async function syncTargetsIfMonitored(stateDir: string): Promise<void> {
  if (existsSync(monitoringPaths(stateDir).targetsDir)) await syncTargets(stateDir);
}

/**
 * `sudo modelship host init --monitoring` runs as root, but deploys (which rewrite the targets) run
 * as the CI user: hand the targets dir to that user. Default owner: SUDO_UID/SUDO_GID when root.
 */
export async function handOverTargets(
  stateDir: string,
  owner: { uid: number; gid: number } | undefined = sudoCaller(),
): Promise<boolean> {
  if (!owner) return false;
  const paths = monitoringPaths(stateDir);
  await mkdir(paths.targetsDir, { recursive: true });
  await chown(paths.targetsDir, owner.uid, owner.gid);
  for (const name of await readdir(paths.targetsDir))
    await chown(join(paths.targetsDir, name), owner.uid, owner.gid);
  return true;
}

function sudoCaller(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(process.env.SUDO_UID);
  const gid = Number(process.env.SUDO_GID);
  return Number.isInteger(uid) && Number.isInteger(gid) && uid > 0 ? { uid, gid } : undefined;
}
