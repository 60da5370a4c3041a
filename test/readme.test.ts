import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../src/engine/engine.js";
import { ledgerSchema } from "../src/ledger/schema.js";
import { SERVED_LABELS } from "../src/rollout/wiring.js";
import { dataPath, repoRoot } from "./support/data.js";
import { ensureDockerHost } from "./support/images.js";

/**
 * The README, as a new user reads it: the demo command is taken from the README verbatim and run in a
 * shell from the repository root. Only the environment is the test's: a temp demo state dir (so a
 * developer's own demo is untouched) and the data path. It must end with the zero-drop line and exit 0.
 */

/** picocolors colours output when CI is set; assertions read the plain text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what we strip
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");
const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const stateDir = mkdtempSync(join(tmpdir(), "mstest-readme-demo-"));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** Lines of ```bash blocks (comments stripped) that run the demo. */
function readmeCommands(pattern: RegExp): string[] {
  const blocks = [...readme.matchAll(/```(?:bash|sh|shell)\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  return blocks
    .flatMap((b) => b.split("\n"))
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => pattern.test(l));
}

describe("README", () => {
  it("names the two commands: the demo and the tests", () => {
    expect(readmeCommands(/^npm run demo$/)).toHaveLength(1);
    expect(readmeCommands(/^npm test$/).length).toBeGreaterThanOrEqual(1);
  });

  it("the demo command with --fast, verbatim: ends with 'Zero requests dropped (N requests, 0 failed)'", {
    timeout: 900_000,
  }, async () => {
    ensureDockerHost();
    const [command] = readmeCommands(/^npm run demo -- --fast$/);
    expect(command, "README shows `npm run demo -- --fast`").toBeDefined();
    const started = performance.now();
    const child = spawn("bash", ["-c", command!], {
      cwd: repoRoot,
      env: { ...process.env, MODELSHIP_DEMO_STATE_DIR: stateDir, MODELSHIP_DATA: dataPath() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += stripAnsi(d.toString());
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `README demo: exit ${code} in ${seconds.toFixed(0)}s\n${out.split("\n").slice(-12).join("\n")}`,
    );

    expect(code, `${out}\n${err}`).toBe(0);
    const last = out.trim().split("\n").at(-1) ?? "";
    const m = /^Zero requests dropped \((\d+) requests, 0 failed\)$/.exec(last);
    expect(m, last).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(1000);
    // The journey happened, with figures: canary steps, the gate, both switches.
    expect(out).toMatch(
      /Starting canary deployment \(10% traffic\)\.\.\. ✓ \(\d+ canary requests, 0 errors, p95 [\d.]+ms, negative \d+% \/ positive \d+%\)/,
    );
    // v2's shadow step, with its real agreement figure, before any of its traffic moves.
    const shadow =
      /Shadow 3s\.\.\. ✓ \(\d+ pairs, agreement [\d.]+% \[[\d.]+–[\d.]+\], mean \|Δp\| [\d.]+/.exec(out);
    expect(shadow, out).not.toBeNull();
    console.log(`README demo shadow step: ${shadow![0]}`);
    const canary = out.lastIndexOf("Starting canary deployment (10% traffic)... ✓");
    expect(shadow!.index).toBeLessThan(canary);
    expect(out.indexOf("Gate passed.")).toBeLessThan(shadow!.index);
    expect(out).toMatch(/Gate passed\./);
    expect(out).toMatch(/Rolling back to v1 .*warm standby, a weight flip, switch \d+ ms/);
    expect(out).toMatch(/Rolling forward to v2 .*switch \d+ ms/);

    // And it cleaned up after itself: nothing serving, the ledger valid and saying so.
    const engine = await Engine.connect();
    expect(await engine.listContainers({ labels: { [SERVED_LABELS.stateDir]: stateDir } })).toEqual([]);
    const ledger = ledgerSchema.parse(JSON.parse(readFileSync(join(stateDir, "ledger.json"), "utf8")));
    expect(ledger.operation).toBeNull();
    expect(ledger.versions.filter((v) => v.role === "stable" || v.container !== null)).toEqual([]);
  });
});
