import { execFile } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalUser, isRoot, type LocalUser } from "./support/local-user.js";

const exec = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec("node", ["bin/modelship.js", ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** One line on stderr, no stack trace. */
const oneLine = (stderr: string) => {
  const lines = stderr.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
};

/**
 * Issue 10 items 2 and 3 through the real CLI, as root, against a real second local user: a state dir
 * someone else prepared is refused before anything in it is read or run, and no value given on the
 * command line or read back from router.json can add a directive to haproxy.cfg.
 */
describe.runIf(isRoot)("host init/check/repair vs. a second local user", () => {
  let evil: LocalUser;
  let work: string;
  let fakeBin: string;
  let proof: string;

  beforeAll(async () => {
    evil = await createLocalUser();
    work = await mkdtemp(join(tmpdir(), "mstest-hostsec-"));
    await chmod(work, 0o755);
    proof = join(work, "bin-ran");
    fakeBin = join(work, "fake-haproxy");
    await writeFile(fakeBin, `#!/bin/sh\necho "ran as $(id -u)" >> ${proof}\nexec /usr/sbin/haproxy "$@"\n`, {
      mode: 0o755,
    });
  });

  afterAll(async () => {
    await evil?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("host init refuses a dir another user pre-created (their owner), and writes nothing into it", async () => {
    const dir = join(work, "theirs");
    await mkdir(dir, { mode: 0o750 });
    await chown(dir, evil.uid, evil.gid);
    await writeFile(join(dir, "router.json"), JSON.stringify({ haproxyBin: fakeBin }));
    const r = await cli(["host", "init", "--state-dir", dir, "--edge-port", "19381"]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(
      /^modelship: refusing to use state dir .*theirs: .* is owned by uid \d+/,
    );
    expect(await readdir(dir)).toEqual(["router.json"]);
    const check = await cli(["host", "check", "--state-dir", dir, "--json"]);
    expect(check.code).toBe(3);
    expect(await readFile(proof, "utf8").catch(() => "")).toBe("");
  });

  it("host init refuses a mode-777 dir (even root's own); check reports it with the fix", async () => {
    const dir = join(work, "open");
    await mkdir(dir);
    await chmod(dir, 0o777);
    const r = await cli(["host", "init", "--state-dir", dir]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/writable by others \(mode 777\)/);
    expect(await readdir(dir)).toEqual([]);
  });

  it("host check as root on the runner-owned dir never runs the haproxyBin it names", async () => {
    const dir = join(work, "runner");
    await mkdir(dir, { mode: 0o750 });
    await writeFile(join(dir, "router.json"), JSON.stringify({ haproxyBin: fakeBin }));
    await chown(dir, evil.uid, evil.gid);
    const r = await cli(["host", "check", "--state-dir", dir, "--json"]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/^modelship: refusing to use state dir .* owned by uid \d+/);
    // even when the dir is the caller's own: router.json cannot name an executable
    await chown(dir, 0, 0);
    const own = await cli(["host", "check", "--state-dir", dir, "--json"]);
    expect(own.code).toBe(3);
    expect(own.stdout).toMatch(/sets haproxyBin=.*never from a path in the state dir/);
    expect(await readFile(proof, "utf8").catch(() => "")).toBe("");
  });

  it("--edge-bind with an injected directive is refused with one line; nothing is written", async () => {
    const dir = join(work, "inject");
    const r = await cli([
      "host",
      "init",
      "--state-dir",
      dir,
      "--edge-bind",
      "127.0.0.1:19381\n    lua-load /tmp/evil.lua\n bind 127.0.0.1",
    ]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toMatch(/^modelship: --edge-bind must be an IP address, a host name or '\*'/);
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it("a tampered router.json is refused by check and repair (one line), never rendered", async () => {
    const dir = join(work, "tampered");
    await mkdir(dir, { mode: 0o750 });
    await writeFile(
      join(dir, "router.json"),
      JSON.stringify({
        edge: { bind: "127.0.0.1:19381\n    lua-load /tmp/evil.lua\n bind 127.0.0.1", port: 19381 },
      }),
    );
    const repair = await cli(["host", "repair", "--state-dir", dir]);
    expect(repair.code).toBe(2);
    expect(oneLine(repair.stderr)).toMatch(
      /invalid router settings in .*router\.json: edge\.bind: bind address/,
    );
    const check = await cli(["host", "check", "--state-dir", dir]);
    expect(check.code).toBe(3);
    expect(check.stdout + check.stderr).toMatch(/invalid router settings in .*router\.json/);
    // the ledger repair ran (its own files); nothing of HAProxy was written or started
    expect(await readdir(dir)).not.toContain("haproxy");
  });
});
