import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const exec = promisify(execFile);

describe("modelship CLI", () => {
  it("prints help with exit codes", async () => {
    const { stdout } = await exec("node", ["bin/modelship.js", "--help"]);
    expect(stdout).toContain("Usage: modelship");
    expect(stdout).toContain("Exit codes");
  });

  it("rejects an unknown command with exit code 2 and no stack trace", async () => {
    const err = await exec("node", ["bin/modelship.js", "frobnicate"]).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/unknown command|too many arguments/);
    expect(err.stderr).not.toMatch(/at .*\.js:\d+/);
  });
});
