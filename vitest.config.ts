import { defineConfig } from "vitest/config";

/**
 * Files that need nothing of the host: no container engine, no HAProxy, no Prometheus, no fixed or
 * shared ports (servers they start listen on port 0, state lives in their own temp dirs, trained
 * bundles are built once under a file lock). They run two at a time, before the drills.
 * Everything else — and every new file until it is listed here — is a drill and runs one at a time.
 */
const UNIT = [
  "action-gate",
  "action-train",
  "analysis",
  "architecture",
  "bundle",
  "byo-serving",
  "cli",
  "config",
  "config-docs",
  "config-example",
  "data",
  "drift",
  "drift-action",
  "examples",
  "gate",
  "gate-cli",
  "gate-stats",
  "github",
  "heal",
  "host-setup-plan",
  "ledger",
  "metrics",
  "monitoring-sync",
  "package",
  "readme-cli",
  "rollout-plan",
  "rollout-steps",
  "router-planner",
  "served-model",
  "serving",
  "serving-compat",
  "serving-hardening",
  "serving-lifecycle",
  "serving-tabular",
  "settings",
  "shadow-compare",
  "smoke",
  "stats",
  "text",
  "train-cli",
  "training",
  "training-onnx",
  "validate",
  "validate-session",
  "workflows",
].map((name) => `test/${name}.test.ts`);

export default defineConfig({
  test: {
    // Integration tests start real servers, containers and HAProxy; give them room.
    testTimeout: 120_000,
    // `host init` installs a self-healing watcher by default; suites that want one pass --watch.
    env: { MODELSHIP_WATCH: "0" },
    hookTimeout: 600_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: UNIT,
          // test/global-setup.ts runs once per run whichever project starts first
          globalSetup: ["test/global-setup.ts"],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "drills",
          include: ["test/**/*.test.ts"],
          exclude: UNIT,
          globalSetup: ["test/global-setup.ts"],
          // Two cores: files that share host resources (engine, HAProxy ports) must not trample each other.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
