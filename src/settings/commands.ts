import { DEFAULT_PIN_HEADER } from "../router/schema.js";
import type { SettingsTable } from "./table.js";
import { CHECK_LIMIT_SETTINGS } from "./validate.js";

/**
 * The settings of the commands and actions outside the rollout and build tables: every CLI flag of
 * `gate`, `drift`, `train`, `validate`, `package`, `serve`, `status`, `demo` and the `host` subcommands, and
 * every input of actions/gate-on-metrics, actions/check-drift and actions/train-and-validate.
 * test/settings.test.ts holds each command's options and each action.yml's inputs to these rows (names,
 * commander attribute = key, defaults); `default` is what the operation applies when the flag is absent.
 */

/** `modelship gate` and actions/gate-on-metrics. */
export const GATE_SETTINGS: SettingsTable = [
  {
    key: "candidate",
    flag: "--candidate <bundle>",
    required: true,
    description: "candidate bundle directory (or its model.json)",
  },
  {
    key: "baseline",
    flag: "--baseline <path>",
    description: "production model: bundle dir, model.json, or saved `modelship status --json` output",
  },
  {
    key: "baselineFromHost",
    flag: "--baseline-from-host",
    actionDefault: "false",
    description: "production model = the stable version in this host's ledger",
  },
  { key: "stateDir", flag: "--state-dir <dir>", description: "ledger state dir (with --baseline-from-host)" },
  {
    key: "baselineRelease",
    flag: "--baseline-release <tag>",
    description: "production model.json from this GitHub release (needs GITHUB_TOKEN, GITHUB_REPOSITORY)",
  },
  {
    key: "policy",
    flag: "--policy <file>",
    description:
      "gate policy file, or a modelship.yaml with a gate: section (default: ./modelship.yaml if present)",
  },
  {
    key: "evalData",
    flag: "--eval-data <csv>",
    description:
      "score both models on every labelled row of this CSV (default: the candidate's held-out split)",
  },
  {
    key: "dataset",
    flag: "--dataset <csv>",
    description:
      "the candidate's training CSV, when the path in its model.json does not resolve here (same bytes)",
  },
  {
    key: "markdown",
    flag: "--markdown <file>",
    input: null,
    description: "also write the markdown report (PR comment / job summary) to this file",
  },
  { key: "json", flag: "--json", input: null, description: "print the verdict as one JSON document" },
  {
    key: "comment",
    flag: null,
    input: "comment",
    default: "true",
    description: "On pull_request events, create or update the sticky PR comment with the report.",
  },
  {
    key: "failOnViolation",
    flag: null,
    input: "fail-on-violation",
    default: "true",
    description: "Fail the step when a gate rule fails (outputs and comment are written either way).",
  },
  {
    key: "githubToken",
    flag: null,
    input: "github-token",
    default: "${{ github.token }}",
    description: "Token for the PR comment and release download (needs pull-requests write / contents read).",
  },
  {
    key: "extra",
    flag: null,
    input: "extra",
    description:
      "Extra markdown appended to the report (job summary and PR comment), e.g. the image smoke-test result.",
  },
];

/** `modelship drift` and actions/check-drift. */
export const DRIFT_SETTINGS: SettingsTable = [
  { key: "url", flag: "--url <url>", description: "edge or server base URL (its /drift window)" },
  {
    key: "log",
    flag: "--log <file>",
    description: "prediction log (JSONL written with MODELSHIP_PREDICTION_LOG)",
  },
  {
    key: "model",
    flag: "--model <dir>",
    description: "bundle that served the logged predictions (with --log)",
  },
  {
    key: "policy",
    flag: "--policy <file>",
    description: "drift policy file, or a modelship.yaml with a drift: section",
  },
  {
    key: "stateDir",
    flag: "--state-dir <dir>",
    description:
      "where the consecutive-check counter lives (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root, else ~/.modelship)",
  },
  {
    key: "state",
    flag: "--no-state",
    input: null,
    description: "one-off check: do not read or update the counter",
  },
  { key: "json", flag: "--json", input: null, description: "one JSON document" },
  {
    key: "retrainWorkflow",
    flag: null,
    input: "retrain-workflow",
    description:
      "Workflow file dispatched when drift is confirmed (empty = the policy's, default deploy.yml).",
  },
  {
    key: "ref",
    flag: null,
    input: "ref",
    description: "Git ref the retraining workflow runs on (empty = the ref of this run).",
  },
  {
    key: "issueLabel",
    flag: null,
    input: "issue-label",
    default: "drift",
    description: "Label of the one standing drift issue (created with the issue).",
  },
  {
    key: "githubToken",
    flag: null,
    input: "github-token",
    default: "${{ github.token }}",
    description: "Token for workflow dispatch (actions write) and the issue (issues write).",
  },
];

/** `modelship train` and actions/train-and-validate. */
export const TRAIN_SETTINGS: SettingsTable = [
  {
    key: "config",
    flag: "--config <file>",
    description: "modelship.yaml (flags override its train: and validate: sections)",
  },
  {
    key: "data",
    flag: "--data <csv>",
    description: "labelled CSV (default: train.data, else $MODELSHIP_DATA)",
  },
  {
    key: "textColumn",
    flag: "--text-column <name>",
    default: "text",
    actionDefault: "",
    description: "column with the text (default: text)",
  },
  {
    key: "labelColumn",
    flag: "--label-column <name>",
    default: "airline_sentiment",
    actionDefault: "",
    description: "column with the label (default: airline_sentiment)",
  },
  {
    key: "labels",
    flag: "--labels <a,b>",
    description: "keep only these labels; rows with others are dropped",
  },
  {
    key: "labelMap",
    flag: "--label-map <from=to,...>",
    description: "rename labels before filtering, e.g. pos=positive",
  },
  {
    key: "dropEmpty",
    flag: "--drop-empty",
    actionDefault: "false",
    description: "drop rows with empty text or label instead of failing",
  },
  {
    key: "seed",
    flag: "--seed <n>",
    input: null,
    default: "42",
    description: "seed of the train/test split and CV folds (overrides train.params.seed; default 42)",
  },
  {
    key: "out",
    flag: "--out <dir>",
    default: "models",
    actionDefault: "",
    description: "directory that receives <name>-<version>/ (default: models)",
  },
  {
    key: "name",
    flag: "--name <name>",
    default: "model",
    actionDefault: "",
    description: "model name (default: model)",
  },
  ...CHECK_LIMIT_SETTINGS,
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "print one JSON object {bundle, version, metrics, checks, passed}; progress goes to stderr",
  },
  {
    key: "model",
    flag: null,
    input: "model",
    description:
      "Bring your own model instead of training: a bare `.onnx` classifier (skl2onnx, torch.onnx.export) is packaged with `data` as the labelled evaluation CSV into a bundle (`modelship package`; its `package:` config section applies), a bundle directory is validated on `data`. Tabular models take a float tensor [N, F] built from `feature-columns` (default: every column but the label).",
  },
  {
    key: "featureColumns",
    flag: null,
    input: "feature-columns",
    description: "BYO tabular models — comma-separated CSV columns fed, in order, as the float input.",
  },
  {
    key: "inputName",
    flag: null,
    input: "input-name",
    description: "BYO models — the input to feed when the model has several.",
  },
  {
    key: "scores",
    flag: null,
    input: "scores",
    description:
      "BYO `.onnx` — what the score output holds, `probabilities` or `logits` (PyTorch; a Softmax is added to the bundle). Empty = detected (rows summing to 1), asking when they do not.",
  },
  {
    key: "reference",
    flag: null,
    input: "reference",
    description:
      "BYO `.onnx` — CSV for the reference distributions, e.g. the training data (default `data`).",
  },
  {
    key: "failOnCheck",
    flag: null,
    input: "fail-on-check",
    default: "true",
    description: "Fail the step when a check fails (outputs and summary are written either way).",
  },
];

/** `modelship validate`. */
export const VALIDATE_SETTINGS: SettingsTable = [
  {
    key: "model",
    flag: "--model <dir|model.onnx>",
    input: null,
    description: "a model bundle directory or a bare .onnx file",
  },
  { key: "data", flag: "--data <csv>", input: null, description: "labelled CSV" },
  {
    key: "labelColumn",
    flag: "--label-column <name>",
    input: null,
    description: "column with the true label (default for bundles: the training column)",
  },
  {
    key: "textColumn",
    flag: "--text-column <name>",
    input: null,
    description: "text models: column fed to the string input",
  },
  {
    key: "featureColumns",
    flag: "--feature-columns <a,b,c>",
    input: null,
    description: "tabular models: columns fed, in order, to the float input",
  },
  {
    key: "inputName",
    flag: "--input-name <name>",
    input: null,
    description: "model input to feed (when the model has several)",
  },
  {
    key: "labels",
    flag: "--labels <a,b>",
    input: null,
    description: "class labels in the model's probability-column order (default: sorted data labels)",
  },
  {
    key: "dropEmpty",
    flag: "--drop-empty",
    input: null,
    description: "drop rows with empty text or label instead of failing",
  },
  {
    key: "config",
    flag: "--config <file>",
    input: null,
    description: "modelship.yaml (its validate: section sets the limits)",
  },
  ...CHECK_LIMIT_SETTINGS,
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "print one JSON object (the report); progress goes to stderr",
  },
];

/** `modelship package`. */
export const PACKAGE_SETTINGS: SettingsTable = [
  {
    key: "config",
    flag: "--config <file>",
    input: null,
    description: "modelship.yaml (flags override its package: section)",
  },
  { key: "model", flag: "--model <onnx>", input: null, description: "the exported ONNX file" },
  {
    key: "data",
    flag: "--data <csv>",
    input: null,
    description: "labelled evaluation CSV (rows the model never trained on)",
  },
  {
    key: "labelColumn",
    flag: "--label-column <name>",
    input: null,
    description: "column with the true label (default: the last column)",
  },
  {
    key: "textColumn",
    flag: "--text-column <name>",
    input: null,
    default: "text",
    description: "text models: column with the text (default: text)",
  },
  {
    key: "featureColumns",
    flag: "--feature-columns <a,b>",
    input: null,
    description: "tabular models: feature columns in input order (default: every column but the label)",
  },
  {
    key: "labels",
    flag: "--labels <a,b>",
    input: null,
    description: "classes in probability-column order (graphs without class labels)",
  },
  {
    key: "scores",
    flag: "--scores <kind>",
    input: null,
    description: "probabilities | logits (default: detected; logits get a Softmax)",
  },
  {
    key: "inputName",
    flag: "--input-name <name>",
    input: null,
    description: "input to feed when the graph has several",
  },
  {
    key: "reference",
    flag: "--reference <csv>",
    input: null,
    description: "data for the reference distributions, e.g. the training set (default: --data)",
  },
  {
    key: "dropEmpty",
    flag: "--drop-empty",
    input: null,
    description: "drop rows with an empty label instead of failing",
  },
  {
    key: "out",
    flag: "--out <dir>",
    input: null,
    default: "models",
    description: "directory that receives <name>-<version>/ (default: models)",
  },
  {
    key: "name",
    flag: "--name <name>",
    input: null,
    default: "model",
    description: "model name (default: model)",
  },
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "print one JSON object {bundle, version, metrics, parity, transforms}; progress to stderr",
  },
];

/** `modelship serve`. */
export const SERVE_SETTINGS: SettingsTable = [
  {
    key: "model",
    flag: "--model <bundle>",
    input: null,
    description: "model bundle directory (env MODELSHIP_MODEL_DIR)",
  },
  {
    key: "port",
    flag: "--port <n>",
    input: null,
    default: "8080",
    description: "port to listen on, 0 = any free port (env PORT, default 8080)",
  },
  {
    key: "host",
    flag: "--host <addr>",
    input: null,
    default: "0.0.0.0",
    description: "address to bind (env HOST, default 0.0.0.0)",
  },
  {
    key: "workers",
    flag: "--workers <n>",
    input: null,
    description: "worker processes, one ORT session each (env MODELSHIP_WORKERS, default: cores)",
  },
  {
    key: "drainGrace",
    flag: "--drain-grace <ms>",
    input: null,
    default: "3000",
    description:
      "after SIGTERM, keep serving this long with readiness false (env MODELSHIP_DRAIN_GRACE_MS, default 3000)",
  },
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "progress as JSON events (server logs are always JSON lines)",
  },
];

/** `modelship status`. */
export const STATUS_SETTINGS: SettingsTable = [
  {
    key: "stateDir",
    flag: "--state-dir <dir>",
    input: null,
    description: "state dir (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root, else ~/.modelship)",
  },
  {
    key: "window",
    flag: "--window <ms>",
    input: null,
    default: "1000",
    description: "measure rates over this many ms (default 1000; 0 = no live rates)",
  },
  { key: "json", flag: "--json", input: null, description: "one JSON document" },
];

/** `modelship demo`. */
export const DEMO_SETTINGS: SettingsTable = [
  {
    key: "data",
    flag: "--data <csv>",
    input: null,
    description:
      "airline tweets CSV (default: $MODELSHIP_DATA, modelship.yaml train.data, else ../shared/data/airline_sentiment.csv)",
  },
  {
    key: "fast",
    flag: "--fast",
    input: null,
    description: "shorter canary (10%→50%→100%, 3s steps) and 2-fold CV: for CI and the README test",
  },
  {
    key: "keep",
    flag: "--keep",
    input: null,
    description: "leave v2 serving (and v1 as warm standby) behind the edge when done",
  },
  {
    key: "down",
    flag: "--down",
    input: null,
    description: "take down a demo left running with --keep, then exit",
  },
  {
    key: "stateDir",
    flag: "--state-dir <dir>",
    input: null,
    description:
      "demo state dir: ledger, HAProxy config, bundles (default: $MODELSHIP_DEMO_STATE_DIR, else ~/.modelship/demo)",
  },
  {
    key: "edgePort",
    flag: "--edge-port <port>",
    input: null,
    default: "8088",
    description: "port the demo edge listens on (default 8088, another free one if taken)",
  },
  {
    key: "rps",
    flag: "--rps <n>",
    input: null,
    default: "200",
    description: "live traffic rate in requests per second (default 200)",
  },
  {
    key: "install",
    flag: "--no-install",
    input: null,
    description: "never install or start host packages; print the commands instead (exit 3)",
  },
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "NDJSON events (each command's output included) and a final result event",
  },
];

/** `modelship host setup`. */
export const HOST_SETUP_SETTINGS: SettingsTable = [
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "machine-readable output (NDJSON steps, then the result)",
  },
  {
    key: "install",
    flag: "--no-install",
    input: null,
    description: "change nothing: print the commands this host needs (exit 3 if any)",
  },
  {
    key: "engineSocket",
    flag: "--engine-socket <path>",
    input: null,
    description:
      "where to start Podman's Docker API (default: DOCKER_HOST's path, else /run/modelship/podman.sock)",
  },
  {
    key: "socketGroup",
    flag: "--socket-group <group>",
    input: null,
    description: "group allowed to use the engine socket (the runner's)",
  },
  {
    key: "with",
    flag: "--with <commands>",
    input: null,
    description: "also install these commands, e.g. wrk,prometheus,promtool (CI)",
  },
  {
    key: "printDockerHost",
    flag: "--print-docker-host",
    input: null,
    description: "progress on stderr; stdout is only the DOCKER_HOST to use (for scripts)",
  },
];

/** `modelship host init`. */
export const HOST_INIT_SETTINGS: SettingsTable = [
  { key: "json", flag: "--json", input: null, description: "machine-readable output" },
  {
    key: "stateDir",
    flag: "--state-dir <dir>",
    input: null,
    description: "state dir (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root)",
  },
  {
    key: "edgePort",
    flag: "--edge-port <port>",
    input: null,
    default: "8080",
    description: "port users send traffic to (default 8080)",
  },
  {
    key: "edgeBind",
    flag: "--edge-bind <addr>",
    input: null,
    default: "0.0.0.0",
    description: "address the edge listens on (default 0.0.0.0)",
  },
  {
    key: "metricsPort",
    flag: "--metrics-port <port>",
    input: null,
    default: "8404",
    description: "HAProxy Prometheus exporter port (default 8404, on 127.0.0.1)",
  },
  {
    key: "socketGroup",
    flag: "--socket-group <group>",
    input: null,
    description: "group that may use the runtime API socket (default under sudo: the caller's)",
  },
  {
    key: "install",
    flag: "--install",
    input: null,
    description: "first install and start the container engine and HAProxy (`host setup`)",
  },
  {
    key: "watch",
    flag: "--watch",
    input: null,
    description: "install the periodic self-healing check (default; MODELSHIP_WATCH=0 turns the default off)",
  },
  {
    key: "watch",
    flag: "--no-watch",
    input: null,
    description: "do not install the periodic self-healing check (systemd timer, else `host watch`)",
  },
  {
    key: "watchInterval",
    flag: "--watch-interval <duration>",
    input: null,
    default: "30s",
    description: "how often the self-healing check runs (default 30s)",
  },
  {
    key: "engineSocket",
    flag: "--engine-socket <path>",
    input: null,
    description: "with --install: where to start Podman's Docker API",
  },
  {
    key: "monitoring",
    flag: "--monitoring",
    input: null,
    description: "also start Prometheus with modelship's scrape config and alert rules",
  },
  {
    key: "monitoringPort",
    flag: "--monitoring-port <port>",
    input: null,
    default: "9090",
    description: "Prometheus port (default 9090, on 127.0.0.1)",
  },
  {
    key: "pin",
    flag: "--pin",
    input: null,
    description:
      "turn on pinning by header: a request naming a running version (stable, canary, standby, shadow candidate) goes to it, any other version gets a 404 (docs/pinning.md)",
  },
  {
    key: "pin",
    flag: "--no-pin",
    input: null,
    description: "turn pinning by header off (the default; the header is then ignored)",
  },
  {
    key: "pinHeader",
    flag: "--pin-header <name>",
    input: null,
    default: DEFAULT_PIN_HEADER,
    description: "header that names the version; implies --pin (default x-modelship-version)",
  },
];

/** `modelship host check`. */
export const HOST_CHECK_SETTINGS: SettingsTable = [
  { key: "json", flag: "--json", input: null, description: "machine-readable output" },
  {
    key: "stateDir",
    flag: "--state-dir <dir>",
    input: null,
    description: "state dir (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root)",
  },
];

/** `modelship host repair`. */
export const HOST_REPAIR_SETTINGS: SettingsTable = [
  { key: "json", flag: "--json", input: null, description: "machine-readable output" },
  {
    key: "stateDir",
    flag: "--state-dir <dir>",
    input: null,
    description: "state dir (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root)",
  },
  {
    key: "maxRestarts",
    flag: "--max-restarts <n>",
    input: null,
    default: "3",
    description:
      "restarts of one version allowed per --restart-window before it is only reported (default 3)",
  },
  {
    key: "restartWindow",
    flag: "--restart-window <duration>",
    input: null,
    default: "15m",
    description: "window for --max-restarts (default 15m)",
  },
];

/** `modelship host watch`. */
export const HOST_WATCH_SETTINGS: SettingsTable = [
  { key: "json", flag: "--json", input: null, description: "machine-readable output" },
  {
    key: "stateDir",
    flag: "--state-dir <dir>",
    input: null,
    description: "state dir (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root)",
  },
  {
    key: "interval",
    flag: "--interval <duration>",
    input: null,
    default: "30s",
    description: "time between checks (default 30s)",
  },
  {
    key: "once",
    flag: "--once",
    input: null,
    description: "one check, then exit (what the systemd timer runs)",
  },
  {
    key: "grace",
    flag: "--grace <n>",
    input: null,
    default: "1",
    description: "checks that must see a problem before repairing (default 1; --once: 0)",
  },
  {
    key: "maxRestarts",
    flag: "--max-restarts <n>",
    input: null,
    default: "3",
    description: "restarts of one version allowed per --restart-window (default 3)",
  },
  {
    key: "restartWindow",
    flag: "--restart-window <duration>",
    input: null,
    default: "15m",
    description: "window for --max-restarts (default 15m)",
  },
];
