import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli/main.js";
import { repoRoot } from "./support/data.js";

/**
 * The CLI as a user meets it: every registered command (and subcommand) answers `--help` through the
 * real binary, offers `--json`, names shared flags the same way, rejects an unknown flag with one line
 * and exit 2, and is listed in the root help and the CLI reference (docs/cli.md).
 */

const bin = join(repoRoot, "bin", "modelship.js");

function leaves(cmd: Command, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const sub of cmd.commands) {
    const path = [...prefix, sub.name()];
    if (sub.commands.length > 0) out.push(...leaves(sub, path));
    else out.push(path);
  }
  return out;
}

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const program = buildProgram();
const commands = leaves(program);
/** Commands that read or change a host's deploy state must let the user point them at one. */
const STATEFUL = ["deploy", "rollback", "status", "host init", "host check", "host repair", "demo", "gate"];

describe("modelship --help", () => {
  it("lists every command and the exit codes", () => {
    const r = cli(["--help"]);
    expect(r.code).toBe(0);
    for (const top of program.commands) expect(r.stdout).toContain(`  ${top.name()} `);
    expect(r.stdout).toMatch(/Exit codes: 0 ok .* 1 .* 2 .* 3 .* 4 /);
    expect(r.stdout).toContain("--debug");
  });

  it("registers the commands the product promises", () => {
    const names = commands.map((c) => c.join(" "));
    for (const expected of [
      "train",
      "validate",
      "gate",
      "build",
      "serve",
      "deploy",
      "rollback",
      "status",
      "host init",
      "host check",
      "host repair",
      "demo",
    ])
      expect(names).toContain(expected);
  });

  for (const path of commands) {
    const name = path.join(" ");
    it(`${name} --help: usage, a capitalised description, --json, consistent shared flags`, () => {
      const r = cli([...path, "--help"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: modelship ${name} `));
      const description = r.stdout.split("\n\n")[1] ?? "";
      expect(description, "description starts with a capital letter").toMatch(/^[A-Z]/);
      expect(r.stdout).toMatch(/^\s+--json\b/m);
      // The same flag takes the same kind of value everywhere.
      for (const line of r.stdout.split("\n")) {
        if (/^\s+--state-dir\b/.test(line)) expect(line).toMatch(/--state-dir <dir>/);
        if (/^\s+--data\b/.test(line)) expect(line).toMatch(/--data <csv>/);
        if (/^\s+--config\b/.test(line)) expect(line).toMatch(/--config <file>/);
        if (/^\s+--json\b/.test(line)) expect(line).not.toMatch(/--json </);
      }
      if (STATEFUL.includes(name)) expect(r.stdout).toMatch(/^\s+--state-dir <dir>/m);
    });

    it(`${name} --no-such-flag: one line, exit 2, no stack trace`, () => {
      const r = cli([...path, "--no-such-flag"]);
      expect(r.code).toBe(2);
      // commander names a missing required option first; either way it is one line, exit 2
      expect(r.stderr).toMatch(/unknown option '--no-such-flag'|required option '--[a-z-]+/);
      expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    });
  }

  it("the CLI reference (docs/cli.md) names every command", () => {
    const readme = readFileSync(join(repoRoot, "docs", "cli.md"), "utf8");
    for (const path of commands) expect(readme, path.join(" ")).toContain(`modelship ${path.join(" ")}`);
  });
});
