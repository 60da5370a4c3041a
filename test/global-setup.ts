import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { leftoverDaemons, TEST_RUN_VAR } from "./support/leftovers.js";

/**
 * Builds dist/ once so tests that spawn the real `modelship` binary run current code, then provisions
 * the host the way a user would (`modelship host setup`: the same path as the demo, `host init
 * --install` and CI): on a fresh Debian machine, as root, it installs and starts a container engine
 * and HAProxy; where it cannot, it prints the exact commands and the run stops here (exit 3) instead
 * of failing test by test. On a ready host it changes nothing.
 *
 * Then it marks this run: every process the tests start inherits MODELSHIP_TEST_RUN, so the teardown
 * can tell whether a test left an HAProxy or Prometheus running (it kills them and fails the run,
 * naming each). The engine service host setup may start is the host's, not the run's: it is started
 * before the mark.
 */
export default function setup(): () => Promise<void> {
  // vitest.config.ts has two projects (unit files two at a time, then the drills), each naming this
  // file: the build, the host setup and the mark happen once per run, the leftover check after the last.
  const registry = globalThis as Record<symbol, SharedRun>;
  registry[SHARED] ??= { users: 0, run: null };
  const shared = registry[SHARED];
  shared.users++;
  shared.run ??= prepare();
  const run = shared.run;
  return async () => {
    if (--shared.users > 0) return;
    await checkLeftovers(run);
  };
}

const SHARED = Symbol.for("modelship.test.global-setup");
interface SharedRun {
  users: number;
  run: string | null;
}

function prepare(): string {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
  if (process.env.MODELSHIP_TEST_SKIP_HOST_SETUP !== "1") {
    try {
      const dockerHost = execFileSync(
        process.execPath,
        [join(import.meta.dirname, "..", "bin", "modelship.js"), "host", "setup", "--print-docker-host"],
        { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" },
      ).trim();
      if (dockerHost) process.env.DOCKER_HOST = dockerHost;
    } catch {
      throw new Error("host setup failed (see above): the suite needs a container engine and HAProxy");
    }
  }
  const run = randomBytes(8).toString("hex");
  process.env[TEST_RUN_VAR] = run;
  return run;
}

async function checkLeftovers(run: string): Promise<void> {
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
}
