import { FAST_SETTINGS, rolloutSettingsSchema } from "../rollout/settings.js";
import { FAST_SHADOW_STEP_MS, SHADOW_STEP_MS } from "../shadow/compare.js";
import { type SettingsTable, table } from "./table.js";

/** The defaults live in the zod schemas that apply them; the tables only render them. */
const R = rolloutSettingsSchema.parse({});
const A = R.analysis;
const FAST = rolloutSettingsSchema.parse(FAST_SETTINGS);

/** 30000 → "30s", 86400000 → "24h" (the way a user writes a duration flag). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["h", 3600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

const STATE_DIR = {
  key: "stateDir",
  flag: "--state-dir <dir>",
  description:
    "state dir with the ledger and router state (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root, else ~/.modelship)",
} as const;

const GITHUB = [
  {
    key: "environment",
    flag: null,
    input: "environment",
    default: "production",
    description: "GitHub Deployment environment name.",
  },
  {
    key: "githubToken",
    flag: null,
    input: "github-token",
    default: "${{ github.token }}",
    description: "Token to record the GitHub Deployment (needs `deployments: write`). Empty = no Deployment.",
  },
] as const;

/** Settings shared by `deploy` and `rollback` (both start containers and hand traffic over). */
export const ROLLOUT_SHARED: SettingsTable = [
  {
    key: "readyTimeout",
    flag: "--ready-timeout <duration>",
    input: null,
    default: formatDuration(R.readyTimeoutMs),
    description: "how long a new container may take to become ready",
  },
  {
    key: "drainTimeout",
    flag: "--drain-timeout <duration>",
    input: null,
    default: formatDuration(R.drainTimeoutMs),
    fast: formatDuration(FAST.drainTimeoutMs),
    description: "how long to wait for a drained server's sessions to end",
  },
  {
    key: "standbyWindow",
    flag: "--standby-window <duration>",
    default: formatDuration(R.standbyWindowMs),
    description: "keep the replaced version running as warm standby for an instant rollback",
  },
  {
    key: "memory",
    flag: "--memory <size>",
    input: null,
    default: R.container.memory,
    description: "container memory limit",
  },
  {
    key: "cpus",
    flag: "--cpus <n>",
    input: null,
    default: String(R.container.cpus),
    description: "container CPU limit",
  },
  {
    key: "workers",
    flag: "--workers <n>",
    input: null,
    default: String(R.container.workers),
    description: "server worker processes per container",
  },
  {
    key: "namePrefix",
    flag: "--name-prefix <prefix>",
    input: null,
    default: R.container.namePrefix,
    description: "container name prefix",
  },
  STATE_DIR,
  {
    key: "wait",
    flag: "--wait",
    actionDefault: "true",
    description: "queue behind a running deploy/rollback instead of refusing (exit 4)",
  },
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "NDJSON progress events and a final result event",
  },
];

/** `modelship deploy` and actions/canary-deploy. */
export const DEPLOY_SETTINGS: SettingsTable = table(
  [
    {
      key: "image",
      flag: "--image <ref>",
      description: "model image built by `modelship build` (wins over --model)",
    },
    {
      key: "model",
      flag: "--model <bundle>",
      description: "model bundle directory: build its image first, then deploy it",
    },
    {
      key: "repository",
      flag: "--repository <repo>",
      description: "image repository for --model builds (default modelship/<model name>)",
    },
    {
      key: "baseImage",
      flag: "--base-image <ref>",
      input: null,
      description: "base image for --model builds",
    },
    {
      key: "config",
      flag: "--config <file>",
      description:
        "modelship.yaml whose deploy: section (steps, shadow) applies under these flags (default: ./modelship.yaml if present)",
    },
    {
      key: "steps",
      flag: "--steps <list>",
      default: R.steps.join(","),
      actionDefault: "",
      description: `canary traffic percentages, comma separated, reaching 100 is the promotion; a leading \`shadow\` (shadow,5,25,50,100) adds a shadow step of --shadow's duration, else ${formatDuration(SHADOW_STEP_MS)} (${formatDuration(FAST_SHADOW_STEP_MS)} with --fast); modelship.yaml deploy.steps applies when not given`,
    },
    {
      key: "interval",
      flag: "--interval <duration>",
      default: formatDuration(R.intervalMs),
      fast: formatDuration(FAST.intervalMs),
      description: "analysis interval per step, e.g. 30s, 2m",
    },
    {
      key: "shadow",
      flag: "--shadow <duration>",
      description:
        "shadow step (off unless given, or the steps start with shadow): before any weight moves, mirror live requests to the candidate this long and compare its answers with stable's; a failing verdict aborts (e.g. 30s; 0 = off)",
    },
    {
      key: "fast",
      flag: "--fast",
      actionDefault: "false",
      description: "demo/test speed: short intervals, smaller minimum samples; explicit settings still win",
    },
    {
      key: "maxExtensions",
      flag: "--max-extensions <n>",
      input: null,
      default: String(R.maxExtensions),
      fast: String(FAST.maxExtensions),
      description: "extend an inconclusive step (too little traffic) at most n times",
    },
    {
      key: "failureThreshold",
      flag: "--failure-threshold <n>",
      input: null,
      default: String(R.failureThreshold),
      description: "failed analyses at one step before aborting",
    },
    {
      key: "allowNoData",
      flag: "--allow-no-data",
      actionDefault: "false",
      description:
        "promote even when a step saw too little traffic to judge (otherwise it extends, then aborts)",
    },
    {
      key: "skipSmoke",
      flag: "--skip-smoke",
      input: null,
      description: "skip the golden smoke test on the candidate (drills; the analysis still judges)",
    },
    {
      key: "maxErrorRate",
      flag: "--max-error-rate <ratio>",
      default: String(A.maxErrorRate),
      description: "largest canary 5xx rate, 0..1",
    },
    {
      key: "maxP95Ms",
      flag: "--max-p95-ms <ms>",
      default: String(A.maxP95Ms),
      description: `absolute canary p95 latency limit in ms (also at most --latency-factor × stable's + ${A.latencySlackMs} ms)`,
      deprecatedFlags: ["--max-p95 <ms>"],
      deprecatedInputs: ["max-p95"],
    },
    {
      key: "maxP99Ms",
      flag: "--max-p99-ms <ms>",
      input: null,
      default: String(A.maxP99Ms),
      description: "absolute canary p99 latency limit in ms",
      deprecatedFlags: ["--max-p99 <ms>"],
    },
    {
      key: "latencyFactor",
      flag: "--latency-factor <k>",
      input: null,
      default: String(A.latencyFactor),
      description: `canary p95/p99 at most k × stable's + ${A.latencySlackMs} ms`,
    },
    {
      key: "maxClassShift",
      flag: "--max-class-shift <d>",
      default: String(A.maxClassShift),
      description: "largest class-mix distance between canary and stable predictions (total variation, 0..1)",
    },
    {
      key: "maxPsi",
      flag: "--max-psi <x>",
      default: String(A.maxPsi),
      description: "largest population stability index between canary and stable confidence histograms",
    },
    {
      key: "minRequests",
      flag: "--min-requests <n>",
      input: null,
      default: String(A.minRequests),
      fast: String(FAST.analysis.minRequests),
      description: "canary responses needed to judge errors and latency",
    },
    {
      key: "minPredictions",
      flag: "--min-predictions <n>",
      input: null,
      default: String(A.minPredictions),
      fast: String(FAST.analysis.minPredictions),
      description: "canary predictions needed to judge quality",
    },
    {
      key: "keepImages",
      flag: "--keep-images <n>",
      input: null,
      default: String(R.keepImages),
      description: "keep images of the newest n versions",
    },
    {
      key: "env",
      flag: "--env <KEY=VALUE>",
      input: null,
      repeatable: true,
      description: "extra container environment (repeatable)",
    },
  ],
  ROLLOUT_SHARED,
  GITHUB,
);

/** `modelship rollback` and actions/rollback. */
export const ROLLBACK_SETTINGS: SettingsTable = table(
  [
    {
      key: "to",
      flag: "--to <version>",
      input: "version",
      description:
        "version to roll back to, exact or a unique prefix (default: the warm standby, else the newest retired)",
    },
    {
      key: "reason",
      flag: "--reason <text>",
      required: true,
      description: "why (recorded in the ledger with who did it)",
    },
    { key: "by", flag: "--by <name>", description: "who rolls back (default $GITHUB_ACTOR, else $USER)" },
  ],
  ROLLOUT_SHARED,
  GITHUB,
);
