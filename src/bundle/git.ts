import { runChecked } from "../util/command.js";

const run = (bin: string, args: string[], options: { cwd: string }) => runChecked(bin, args, options);

/** The commit a bundle was trained from, when run inside a git work tree; null otherwise. */
export async function gitState(
  cwd: string = process.cwd(),
): Promise<{ commit: string; dirty: boolean } | null> {
  try {
    const { stdout: head } = await run("git", ["rev-parse", "HEAD"], { cwd });
    const commit = head.trim();
    if (!/^[0-9a-f]{40}$/.test(commit)) return null;
    const { stdout: status } = await run("git", ["status", "--porcelain", "--untracked-files=no"], { cwd });
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return null;
  }
}
