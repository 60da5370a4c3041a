import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { leftoverDaemons, TEST_RUN_VAR } from "./support/leftovers.js";

/**
 * Builds dist/ once so tests that spawn the real `modelship` binary run current code, and marks this
 * run: every process the tests start inherits MODELSHIP_TEST_RUN, so the teardown can tell whether a
 * test left an HAProxy or Prometheus running (it kills them and fails the run, naming each).
 */
export default function setup(): () => Promise<void> {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
  const run = randomBytes(8).toString("hex");
  process.env[TEST_RUN_VAR] = run;
  return async () => {
    // a soft-stopping HAProxy may take a moment to exit after its test's afterAll
    let left = await leftoverDaemons(run);
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      left = await leftoverDaemons(run);
    }
    if (left.length === 0) return;
    for (const p of left) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    // vitest only prints an error thrown here; the exit code is what CI sees
    process.exitCode = 1;
    throw new Error(
      `tests left ${left.length} process(es) running (killed now): ${left.map((p) => `${p.pid} ${p.cmdline}`).join(" | ")}`,
    );
  };
}
