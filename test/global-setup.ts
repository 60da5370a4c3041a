import { execFileSync } from "node:child_process";
import { join } from "node:path";

/**
 * Builds dist/ once so tests that spawn the real `modelship` binary run current code, then provisions
 * the host the way a user would (`modelship host setup`: the same path as the demo, `host init
 * --install` and CI): on a fresh Debian machine, as root, it installs and starts a container engine
 * and HAProxy; where it cannot, it prints the exact commands and the run stops here (exit 3) instead
 * of failing test by test. On a ready host it changes nothing.
 */
export default function setup(): void {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
  if (process.env.MODELSHIP_TEST_SKIP_HOST_SETUP === "1") return;
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
