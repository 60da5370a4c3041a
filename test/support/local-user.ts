import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { runCommand } from "../../src/util/command.js";

/**
 * A real second local account for attack tests (the suite runs as root here): created by the test,
 * removed after it, with everything it owned killed first.
 */
export interface LocalUser {
  name: string;
  uid: number;
  gid: number;
  /** Runs a command as this user (no shell unless you pass one); never throws for a non-zero exit. */
  run(bin: string, args: string[], timeoutMs?: number): ReturnType<typeof runCommand>;
  remove(): Promise<void>;
}

export const isRoot = process.geteuid?.() === 0;

export async function createLocalUser(): Promise<LocalUser> {
  const name = `mstest${randomBytes(3).toString("hex")}`;
  execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name]);
  const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim());
  return {
    name,
    uid,
    gid,
    run: (bin, args, timeoutMs = 60_000) =>
      runCommand("runuser", ["-u", name, "--", bin, ...args], { timeoutMs }),
    async remove() {
      await runCommand("pkill", ["-KILL", "-u", String(uid)]);
      await runCommand("userdel", ["--force", name]);
    },
  };
}
