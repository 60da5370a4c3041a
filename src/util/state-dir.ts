import { lstat, stat } from "node:fs/promises";
import { join } from "node:path";
import { ExitCode, UserError } from "./errors.js";

/**
 * The state dir holds what HAProxy, Prometheus and the ledger run from. It is trusted only when nobody
 * less privileged than the caller can change it: owned by the caller or root (under sudo: or by the
 * sudo caller, who can become root anyway) and not writable by group or others. Anything else could
 * have been prepared by another local user (files swapped in, symlinks planted), so we refuse it.
 */
export interface StateDirProblem {
  path: string;
  detail: string;
}

/** uids whose state dir this process may use: itself, root, and under sudo the invoking user. */
export function trustedOwners(): Set<number> {
  const uid = process.geteuid?.() ?? process.getuid?.();
  const owners = new Set<number>([0]);
  if (uid !== undefined) owners.add(uid);
  if (uid === 0) {
    const sudo = Number(process.env.SUDO_UID);
    if (Number.isInteger(sudo) && sudo > 0) owners.add(sudo);
  }
  return owners;
}

/**
 * What is wrong with `stateDir` (and its `haproxy/`, `monitoring/` subdirs when present), or undefined
 * when it is safe or does not exist yet (then it will be created 0750 by the caller).
 */
export async function stateDirProblem(stateDir: string): Promise<StateDirProblem | undefined> {
  const owners = trustedOwners();
  for (const path of [stateDir, join(stateDir, "haproxy"), join(stateDir, "monitoring")]) {
    const link = await lstat(path).catch((err: NodeJS.ErrnoException) => err);
    if (link instanceof Error) {
      if (link.code === "ENOENT") {
        if (path === stateDir) return undefined;
        continue;
      }
      return { path, detail: `cannot inspect ${path} (${link.code})` };
    }
    // A symlinked state dir is fine when the link itself is trusted; subdirs must be real directories.
    if (link.isSymbolicLink() && path !== stateDir) return { path, detail: `${path} is a symbolic link` };
    if (link.isSymbolicLink() && !owners.has(link.uid))
      return { path, detail: `${path} is a symbolic link owned by uid ${link.uid}` };
    const s = link.isSymbolicLink() ? await stat(path).catch(() => undefined) : link;
    if (!s) return { path, detail: `${path} is a dangling symbolic link` };
    if (!s.isDirectory()) return { path, detail: `${path} is not a directory` };
    if (!owners.has(s.uid))
      return {
        path,
        detail: `${path} is owned by uid ${s.uid}, not by this user (uid ${[...owners].at(-1)}) or root`,
      };
    if ((s.mode & 0o022) !== 0)
      return {
        path,
        detail: `${path} is writable by ${s.mode & 0o002 ? "others" : "its group"} (mode ${(s.mode & 0o777).toString(8)})`,
      };
  }
  return undefined;
}

/** Throws a one-line UserError (exit 3) when the state dir cannot be trusted. */
export async function assertSafeStateDir(stateDir: string): Promise<void> {
  const problem = await stateDirProblem(stateDir);
  if (!problem) return;
  throw new UserError(`refusing to use state dir ${stateDir}: ${problem.detail}`, {
    exitCode: ExitCode.environment,
    hint: `use a directory only you (or root) can write: \`sudo install -d -m 750 -o "$(id -un)" ${stateDir}\` after removing the old one`,
  });
}
