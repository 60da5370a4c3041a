import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Integration tests start real servers, containers and HAProxy; give them room.
    testTimeout: 120_000,
    // `host init` installs a self-healing watcher by default; suites that want one pass --watch.
    env: { MODELSHIP_WATCH: "0" },
    hookTimeout: 600_000,
    pool: "forks",
    // Two cores: files that share host resources (engine, HAProxy ports) must not trample each other.
    fileParallelism: false,
  },
});
