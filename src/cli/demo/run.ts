import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { readBundle } from "../../bundle/read.js";
import { loadConfig } from "../../config/load.js";
import { Engine } from "../../engine/engine.js";
import { initHost } from "../../host/init.js";
import { DEFAULT_BASE_IMAGE } from "../../image/build.js";
import { MODEL_LABELS } from "../../image/labels.js";
import { type LoadHandle, type LoadReport, startLoad } from "../../load/generator.js";
import { freePort } from "../../rollout/wiring.js";
import { pc } from "../../util/colors.js";
import { runChecked } from "../../util/command.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { formatDuration, type Reporter } from "../../util/progress.js";
import { teardown } from "./cleanup.js";
import { ImageCache, imageKey } from "./images.js";
import { ensureHost } from "./prerequisites.js";

export const DEMO_DEFAULTS = {
  data: "../shared/data/airline_sentiment.csv",
  edgePort: 8088,
  rps: 200,
  name: "airline-sentiment",
  repository: "modelship-demo/airline-sentiment",
  namePrefix: "modelship-demo-",
  labels: ["negative", "positive"],
} as const;

/**
 * Hyper-parameters of the two versions: v2 differs on purpose (weaker regularisation, larger vocabulary)
 * but not so much that its confidence distribution trips the canary's PSI check at 5% traffic (C 8 does).
 */
const V1_PARAMS = { C: 4, maxFeatures: 20_000 };
const V2_PARAMS = { C: 5, maxFeatures: 30_000 };

export interface DemoOptions {
  data?: string;
  fast: boolean;
  keep: boolean;
  json: boolean;
  stateDir: string;
  edgePort?: number;
  rps: number;
  install: boolean;
}

export interface DemoResult {
  stateDir: string;
  edgeUrl: string;
  v1: string;
  v2: string;
  baseImage: string;
  traffic: LoadReport;
  rollback: { mode: string; switchMs: number };
  rollForward: { mode: string; switchMs: number };
  durationMs: number;
  kept: boolean;
}

/** `--state-dir` else `$MODELSHIP_DEMO_STATE_DIR` else ~/.modelship/demo: never the real host's ledger. */
export function demoStateDir(flag?: string): string {
  if (flag) return resolve(flag);
  if (process.env.MODELSHIP_DEMO_STATE_DIR) return resolve(process.env.MODELSHIP_DEMO_STATE_DIR);
  return join(homedir(), ".modelship", "demo");
}

/** Shared by every demo state dir (tests use temp ones), so a second run never rebuilds an unchanged image. */
export function demoImageCacheFile(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "modelship", "demo-images.json");
}

/** The installed package's root (works from src/ under tsx and from dist/src/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "bin", "modelship.js"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the modelship package root");
    dir = up;
  }
  return dir;
}

/** --data, then $MODELSHIP_DATA, then train.data of ./modelship.yaml, then the repository's shared data. */
export async function resolveDemoData(flag?: string): Promise<string> {
  let path = flag ?? process.env.MODELSHIP_DATA;
  let from = flag ? "--data" : "MODELSHIP_DATA";
  if (!path && existsSync("modelship.yaml")) {
    const loaded = await loadConfig("modelship.yaml");
    if (loaded.config.train?.data) {
      path = loaded.resolvePath(loaded.config.train.data);
      from = "modelship.yaml train.data";
    }
  }
  if (!path) {
    path = DEMO_DEFAULTS.data;
    from = "the default";
  }
  const abs = resolve(path);
  if (!existsSync(abs))
    throw new UserError(`the demo data ${abs} (from ${from}) does not exist`, {
      exitCode: ExitCode.usage,
      hint: "pass --data <airline_sentiment.csv> or set MODELSHIP_DATA",
    });
  return abs;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "0.0.0.0", () => srv.close(() => res(true)));
  });
}

class Interrupted extends Error {}

/** What `modelship train --json` prints that the demo uses. */
interface Trained {
  bundle: string;
  version: string;
  metrics: { accuracy: number; macroF1: number };
}

/** What `modelship rollback --json` reports in its result event. */
interface Flip {
  version: string;
  mode: string;
  switchMs: number;
  edge: { requests: number; failed: number };
}

/** The demo's state shared with the SIGINT handler. */
class Session {
  child: ChildProcess | null = null;
  traffic: LoadHandle | null = null;
  interrupted = false;
}

interface CliResult {
  code: number;
  /** Parsed JSON documents from stdout (NDJSON lines or one document). */
  docs: Record<string, unknown>[];
  stderr: string;
}

export async function runDemo(opts: DemoOptions, reporter: Reporter): Promise<DemoResult> {
  const started = performance.now();
  const session = new Session();
  const root = packageRoot();
  const bin = join(root, "bin", "modelship.js");
  const stateDir = opts.stateDir;
  const work = join(stateDir, "work");
  const human = reporter.mode === "human";
  const say = (line = "") => reporter.info(line);
  const heading = (n: number, text: string) => {
    say();
    say(pc.bold(`── ${n}. ${text}`));
    reporter.event({ type: "phase", phase: n, title: text });
  };

  /** Runs one modelship command as a child, the way a user would type it. */
  const cli = (args: string[], capture: boolean): Promise<CliResult> =>
    new Promise((resolvePromise, reject) => {
      if (session.interrupted) return reject(new Interrupted());
      const json = capture || opts.json;
      const argv = json ? [...args, "--json"] : args;
      if (human) say(pc.dim(`$ modelship ${argv.join(" ")}`));
      // The one child that is not run through util/command.ts: it shares our terminal (inherited
      // stdio) and Ctrl-C interrupts it, which a captured run cannot do.
      const child = spawn(process.execPath, [bin, ...argv], {
        stdio: ["ignore", json ? "pipe" : "inherit", opts.json ? "pipe" : "inherit"],
        env: process.env,
      });
      session.child = child;
      let stdout = "";
      let stderr = "";
      child.stdout?.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      child.on("error", reject);
      child.on("exit", (code, signal) => {
        session.child = null;
        if (session.interrupted) return reject(new Interrupted());
        const docs: Record<string, unknown>[] = [];
        const text = stdout.trim();
        if (text) {
          try {
            docs.push(JSON.parse(text));
          } catch {
            for (const line of text.split("\n"))
              if (line.trim().startsWith("{")) {
                try {
                  docs.push(JSON.parse(line));
                } catch {
                  // not JSON: ignore
                }
              }
          }
        }
        if (opts.json) for (const d of docs) reporter.event({ type: "command", command: args[0], output: d });
        const exit = code ?? (signal ? 128 : 1);
        if (exit !== 0) {
          const why = stderr.trim().split("\n").pop();
          return reject(
            new UserError(
              `\`modelship ${args[0]}\` failed (exit ${exit})${why && opts.json ? `: ${why}` : ""}`,
              {
                exitCode: exit === ExitCode.environment ? ExitCode.environment : ExitCode.failed,
              },
            ),
          );
        }
        resolvePromise({ code: exit, docs, stderr });
      });
    });

  // Ctrl-C: stop the traffic and the running command, take the demo down, leave the ledger valid.
  let cleaning: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (cleaning) {
      process.stderr.write("modelship demo: second interrupt, exiting without cleanup\n");
      process.exit(130);
    }
    session.interrupted = true;
    process.stderr.write(`\nmodelship demo: ${signal}: cleaning up (containers, HAProxy, traffic)...\n`);
    cleaning = (async () => {
      session.traffic?.kill();
      const child = session.child;
      if (child && child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            child.kill("SIGKILL");
            r();
          }, 8000);
          child.once("exit", () => {
            clearTimeout(t);
            r();
          });
        });
      }
      try {
        const down = await teardown(stateDir);
        process.stderr.write(
          `modelship demo: removed ${down.containers.length} container(s), HAProxy ${down.haproxyStopped ? "stopped" : "was not running"}; ledger ${join(stateDir, "ledger.json")} records it\n`,
        );
      } catch (err) {
        process.stderr.write(`modelship demo: cleanup failed: ${(err as Error).message}\n`);
      }
      process.exit(130);
    })();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const checkpoint = () => {
    if (session.interrupted) throw new Interrupted();
  };

  // The demo is a list of phases; each runs with the helpers above and hands its results to the next
  // through these variables. The loop prints each heading and honours Ctrl-C between phases.
  let engine!: Engine;
  let baseImage!: string;
  let edgeUrl!: string;
  let data!: string;
  let v1!: Trained;
  let v1Deployed!: string;
  let v2!: Trained;
  let v2Deployed!: string;
  let back!: Flip;
  let forward!: Flip;
  let result!: DemoResult;

  // Helpers the phases share (they read the phase results above when called).
  const common = ["--state-dir", stateDir];
  const rollout = [
    "--fast",
    "--name-prefix",
    DEMO_DEFAULTS.namePrefix,
    "--drain-timeout",
    "5s",
    // Two failed analyses at one step abort (one repeats the step): a single noisy interval on a
    // busy 2-core box does not end the demo, a real regression still does.
    "--failure-threshold",
    "2",
    // A shadow step first (v2 only: a first deploy has no stable to compare with): the edge mirrors
    // live requests to v2 at weight 0 and its answers are compared with v1's, 3 s with --fast.
    ...(opts.fast
      ? ["--steps", "shadow,10,50,100", "--interval", "3s"]
      : ["--steps", "shadow,5,25,50,100", "--interval", "5s", "--shadow", "5s"]),
  ];
  const trainVersion = async (label: string, params: Record<string, unknown>) => {
    const config = join(work, `${label}.yaml`);
    await writeFile(
      config,
      stringify({
        train: {
          name: DEMO_DEFAULTS.name,
          labels: [...DEMO_DEFAULTS.labels],
          params: { ...params, cvFolds: opts.fast ? 2 : 3 },
          out: "models",
        },
      }),
    );
    const r = await cli(["train", "--config", config, "--data", data], true);
    const doc = r.docs.find((d) => typeof d.bundle === "string") as
      | { bundle: string; version: string; metrics: { accuracy: number; macroF1: number } }
      | undefined;
    if (!doc)
      throw new UserError("`modelship train --json` printed no bundle", { exitCode: ExitCode.failed });
    say(
      `${pc.green("✓")} ${label} = ${doc.version}: accuracy ${doc.metrics.accuracy.toFixed(3)} · macro-F1 ${doc.metrics.macroF1.toFixed(3)} (${Object.entries(
        params,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")})`,
    );
    return doc;
  };
  const images = new ImageCache(demoImageCacheFile());
  /** Deploys a trained bundle; an identical model built by an earlier run is deployed from its image. */
  const deployBundle = async (bundle: string): Promise<string> => {
    const { card } = await readBundle(bundle);
    const key = await imageKey(root, baseImage, card.model.sha256);
    const cached = await images.lookup(engine, key, card.model.sha256);
    if (cached) {
      say(
        pc.dim(
          `(model sha256 ${card.model.sha256.slice(0, 12)}… was built by an earlier demo run: deploying its image ${cached} instead of building it again)`,
        ),
      );
      await cli(["deploy", "--image", cached, ...rollout, ...common], false);
      const info = await engine.inspectImage(cached);
      return info?.labels[MODEL_LABELS.version] ?? card.version;
    }
    await cli(
      [
        "deploy",
        "--model",
        bundle,
        "--repository",
        DEMO_DEFAULTS.repository,
        "--base-image",
        baseImage,
        ...rollout,
        ...common,
      ],
      false,
    );
    await images.remember(key, `${DEMO_DEFAULTS.repository}:${card.version}`);
    return card.version;
  };

  const checkHost = async (): Promise<void> => {
    // Its own ✓/✗ steps: read the host, then install/start what is missing (src/host/setup.ts).
    const facts = await ensureHost(reporter, { install: opts.install });
    reporter.info(`  engine: ${facts.server} at ${facts.dockerHost}; HAProxy ${facts.haproxy}`);
    checkpoint();
    const left = await reporter.step(
      "Clearing any earlier demo run",
      () => teardown(stateDir),
      (d) =>
        d.containers.length || d.haproxyStopped
          ? `(removed ${d.containers.length} container(s)${d.haproxyStopped ? ", stopped its HAProxy" : ""})`
          : "(nothing left over)",
    );
    void left;
    engine = new Engine();
    baseImage = await reporter.step(
      "Choosing the base image",
      () => chooseBaseImage(engine, root, reporter),
      (b) => `(${b})`,
    );
    checkpoint();
    let edgePort = opts.edgePort ?? DEMO_DEFAULTS.edgePort;
    if (!(await portFree(edgePort))) {
      if (opts.edgePort !== undefined)
        throw new UserError(`edge port ${edgePort} is in use`, {
          exitCode: ExitCode.environment,
          hint: "pick another with --edge-port <port>",
        });
      const other = await freePort();
      reporter.warn(`port ${edgePort} is in use: the demo edge listens on ${other} instead`);
      edgePort = other;
    }
    const edge = await initHost(
      { stateDir, edgePort, metricsPort: await freePort(), supervisor: "daemon" },
      reporter,
    );
    edgeUrl = edge.edgeUrl;
  };

  const deployV1 = async (): Promise<void> => {
    data = await resolveDemoData(opts.data);
    await mkdir(join(work, "models"), { recursive: true });
    say(pc.dim(`data: ${data}`));
    v1 = await trainVersion("v1", V1_PARAMS);
    checkpoint();
    v1Deployed = await deployBundle(v1.bundle);
  };

  const startTraffic = async (): Promise<void> => {
    const card = (await readBundle(v1.bundle)).card;
    const params = card.training?.params ?? {};
    session.traffic = await reporter.step(
      "Starting the traffic generator (separate process)",
      () =>
        startLoad({
          url: edgeUrl,
          texts: {
            data,
            textColumn: card.dataset.textColumn ?? "text",
            split: {
              labelColumn: card.dataset.labelColumn ?? "airline_sentiment",
              labels: [...DEMO_DEFAULTS.labels],
              seed: typeof params.seed === "number" ? params.seed : 42,
              testSize: typeof params.testSize === "number" ? params.testSize : 0.2,
            },
          },
          rps: opts.rps,
          detached: true,
        }),
      (t) => `(pid ${t.pid}, POST ${edgeUrl}/predict)`,
    );
  };

  const canaryV2 = async (): Promise<void> => {
    v2 = await trainVersion("v2", V2_PARAMS);
    checkpoint();
    await cli(["gate", "--candidate", v2.bundle, "--baseline", v1.bundle], false);
    checkpoint();
    v2Deployed = await deployBundle(v2.bundle);
    const mid = await session.traffic!.snapshot();
    say(
      pc.dim(
        `traffic so far: ${mid.completed} requests, ${mid.failed} failed, p95 ${mid.p95Ms} ms at the client`,
      ),
    );
  };

  const rollBackAndForward = async (): Promise<void> => {
    await cli(["status", ...common], false);
    checkpoint();
    const flip = async (title: string, args: string[]) =>
      reporter.step(
        title,
        async () => {
          const r = await cli(["rollback", ...args, ...common, "--drain-timeout", "5s"], true);
          const out = r.docs.find((d) => d.type === "result") as
            | { version: string; mode: string; switchMs: number; edge: { requests: number; failed: number } }
            | undefined;
          if (!out) throw new UserError("`modelship rollback --json` printed no result", { exitCode: 1 });
          return out;
        },
        (o) =>
          `(${o.version} serves 100%: ${o.mode === "warm" ? "warm standby, a weight flip" : "cold start"}, switch ${Math.round(o.switchMs)} ms; ${o.edge.failed} of ${o.edge.requests} requests failed meanwhile)`,
      );
    back = await flip(`Rolling back to v1 (${v1Deployed})`, [
      "--reason",
      "demo: roll back to v1",
      "--by",
      "modelship-demo",
    ]);
    checkpoint();
    forward = await flip(`Rolling forward to v2 (${v2Deployed})`, [
      "--to",
      v2Deployed,
      "--reason",
      "demo: roll forward to v2",
      "--by",
      "modelship-demo",
    ]);
  };

  const countRequests = async (): Promise<void> => {
    const traffic = await reporter.step(
      "Stopping the traffic generator",
      () => session.traffic!.stop(),
      (t) =>
        `(${t.completed} requests in ${formatDuration(t.durationMs)}, ${t.achievedRps} req/s, p50 ${t.p50Ms} ms, p95 ${t.p95Ms} ms)`,
    );
    session.traffic = null;
    const codes = Object.entries(traffic.byStatus)
      .map(([s, n]) => `${n}× HTTP ${s}`)
      .concat(Object.entries(traffic.errors).map(([c, n]) => `${n}× ${c}`));
    const line =
      traffic.failed === 0
        ? `Zero requests dropped (${traffic.completed} requests, 0 failed)`
        : `${traffic.failed} requests failed (${traffic.completed} requests: ${codes.join(", ")})`;
    result = {
      stateDir,
      edgeUrl,
      v1: v1Deployed,
      v2: v2Deployed,
      baseImage,
      traffic,
      rollback: { mode: back.mode, switchMs: Math.round(back.switchMs) },
      rollForward: { mode: forward.mode, switchMs: Math.round(forward.switchMs) },
      durationMs: Math.round(performance.now() - started),
      kept: opts.keep,
    };
    if (opts.keep) {
      say();
      say(
        `Left running (--keep): ${v2Deployed} serves ${edgeUrl}/predict, ${v1Deployed} is the warm standby.`,
      );
      say(`  curl -s ${edgeUrl}/predict -H 'content-type: application/json' -d '{"text":"great flight"}'`);
      say(`  modelship status --state-dir ${stateDir}`);
      say(`  modelship demo --down --state-dir ${stateDir}   # take it down`);
    } else {
      await reporter.step(
        "Taking the demo down",
        () => teardown(stateDir),
        (d) =>
          `(${d.containers.length} container(s) removed, HAProxy stopped; ledger kept in ${stateDir}; --keep leaves it running)`,
      );
    }
    say();
    say(`Demo finished in ${formatDuration(result.durationMs)}.`);
    say(traffic.failed === 0 ? pc.bold(pc.green(line)) : pc.bold(pc.red(line)));
    reporter.event({ type: "result", line, ...result });
  };

  const phases: Array<{ title: () => string; run: () => Promise<void> }> = [
    { title: () => "Host: container engine and HAProxy", run: checkHost },
    { title: () => "Train v1 on the airline tweets and deploy it as stable", run: deployV1 },
    {
      title: () => `Live traffic: ${opts.rps} req/s of real test-split tweets against ${edgeUrl}`,
      run: startTraffic,
    },
    {
      title: () =>
        "Train v2 (other hyper-parameters), gate it against v1, shadow it, canary it under traffic",
      run: canaryV2,
    },
    { title: () => "Status, instant rollback to v1 and forward again", run: rollBackAndForward },
    { title: () => "Stop the traffic and count", run: countRequests },
  ];

  try {
    for (const [i, phase] of phases.entries()) {
      heading(i + 1, phase.title());
      await phase.run();
      checkpoint();
    }
    return result;
  } catch (err) {
    if (err instanceof Interrupted || session.interrupted) {
      await cleaning;
      await new Promise(() => {}); // the signal handler exits
    }
    session.traffic?.kill();
    // A failed step leaves nothing running unless --keep asked for it (to look at what went wrong).
    if (!opts.keep)
      await teardown(stateDir).then(
        (d) => {
          if (d.containers.length || d.haproxyStopped)
            reporter.warn(
              `demo stopped: removed ${d.containers.length} container(s) and its HAProxy (--keep leaves them for inspection)`,
            );
        },
        (e) => reporter.warn(`cleanup after the failure failed too: ${(e as Error).message}`),
      );
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * The official Node slim image when the engine has it or can pull it; otherwise (no registry, as on
 * this project's CI) the local stand-in built from this host's node by scripts/base-image.sh.
 */
async function chooseBaseImage(engine: Engine, root: string, reporter: Reporter): Promise<string> {
  if (await engine.inspectImage(DEFAULT_BASE_IMAGE)) return DEFAULT_BASE_IMAGE;
  try {
    await engine.run("docker pull", ["pull", DEFAULT_BASE_IMAGE], { timeoutMs: 180_000 });
    return DEFAULT_BASE_IMAGE;
  } catch {
    // no registry: fall through to the local base image
  }
  const script = join(root, "scripts", "base-image.sh");
  if (!existsSync(script))
    throw new UserError(`cannot pull ${DEFAULT_BASE_IMAGE} and scripts/base-image.sh is not available`, {
      exitCode: ExitCode.environment,
      hint: `pull it once with \`docker pull ${DEFAULT_BASE_IMAGE}\``,
    });
  const { stdout } = await runChecked("bash", [script, "modelship-base"], { cwd: root, env: process.env });
  const ref = stdout.trim().split("\n").pop()!;
  reporter.warn(
    `${DEFAULT_BASE_IMAGE} is not available (no registry reachable): using the local base image ${ref} built from this host's node by scripts/base-image.sh`,
  );
  return ref;
}
