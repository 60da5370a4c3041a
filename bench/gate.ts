/**
 * `npm run bench:gate` — how long the paired gate takes on the airline data: `modelship gate` end to
 * end (a fresh process: load both bundles, replay the held-out split, run both models over its 2,309
 * rows with onnxruntime-node, 2,000 bootstrap resamples, golden parity, report), against the floor of
 * the same run: onnxruntime-node alone answering those rows with both models. Goal: under 5 s.
 * Flags: --candidate <bundle> --baseline <bundle> (default: trains both into a temp dir from
 *        $MODELSHIP_DATA or ../shared/data: seed 42 and a C = 0.02 model) --rounds <n> (3) --json
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { readBundle } from "../src/bundle/read.js";
import { loadTextDataset } from "../src/data/dataset.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { textTable } from "../src/util/progress.js";
import { stratifiedSplit } from "../training/split.js";

const exec = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({
  options: {
    candidate: { type: "string" },
    baseline: { type: "string" },
    rounds: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});
const GOAL_MS = 5000;
const log = (s: string) => {
  if (!args.json) process.stderr.write(`${s}\n`);
};

async function train(out: string, extra: string[]): Promise<string> {
  const data = process.env.MODELSHIP_DATA ?? resolve(root, "../shared/data/airline_sentiment.csv");
  const cli = ["bin/modelship.js", "train", "--data", data, "--labels", "negative,positive"];
  await exec("node", [...cli, "--out", out, "--name", "airline", "--json", ...extra], { cwd: root });
  return join(out, (await readdir(out)).find((e) => e.startsWith("airline-"))!);
}

/** Both models over the candidate's held-out rows, ORT only (data already in memory): the floor. */
async function floorMs(candidate: string, baseline: string): Promise<number> {
  const c = await readBundle(candidate);
  const ds = loadTextDataset({
    path: c.card.dataset.path,
    textColumn: c.card.dataset.textColumn!,
    labelColumn: c.card.dataset.labelColumn,
    labels: c.card.io.labels,
    onEmpty: "drop",
  });
  const split = stratifiedSplit(
    ds.examples.map((e) => e.label),
    Number(c.card.training!.params.testSize),
    c.card.training!.seed,
  );
  const texts = split.test.map((i) => ds.examples[i]!.text);
  const t0 = performance.now();
  for (const dir of [candidate, baseline]) {
    const s = await ClassifierSession.open(join(dir, "model.onnx"));
    for (let i = 0; i < texts.length; i += 512) await s.predict(texts.slice(i, i + 512));
    await s.release();
  }
  return performance.now() - t0;
}

/** One `modelship gate` process: wall time, and its CPU time (user + sys) — steadier on a shared host. */
async function gateMs(
  candidate: string,
  baseline: string,
  out: string,
): Promise<{ ms: number; cpuMs: number; rows: number; pairedMs: number }> {
  const cmd = [
    'TIMEFORMAT="%3U %3S"; time node bin/modelship.js gate --candidate "$1" --baseline "$2" --json',
    '--policy /dev/null > "$3" 2>/dev/null || true',
  ].join(" ");
  const t0 = performance.now();
  const r = await exec("bash", ["-c", cmd, "gate", candidate, baseline, out], { cwd: root });
  const ms = performance.now() - t0;
  const [user, sys] = r.stderr.trim().split("\n").at(-1)!.split(" ").map(Number);
  const v = JSON.parse(await readFile(out, "utf8")) as {
    comparison: { mode: string; evaluation: { rows: number }; ms: number };
  };
  if (v.comparison.mode !== "paired")
    throw new Error(`expected a paired comparison, got ${v.comparison.mode}`);
  return { ms, cpuMs: (user! + sys!) * 1000, rows: v.comparison.evaluation.rows, pairedMs: v.comparison.ms };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const tmp = await mkdtemp(join(tmpdir(), "msbench-gate-"));
try {
  let { candidate, baseline } = args;
  if (!candidate || !baseline) {
    log("training the production model (seed 42) and a weaker candidate (C = 0.02)…");
    baseline = await train(join(tmp, "base"), []);
    const config = join(tmp, "weak.yaml");
    await writeFile(config, "train:\n  params:\n    C: 0.02\n");
    candidate = await train(join(tmp, "weak"), ["--config", config]);
  }
  const rounds = Number(args.rounds);
  const gate: number[] = [];
  const cpu: number[] = [];
  const paired: number[] = [];
  const floor: number[] = [];
  let rows = 0;
  for (let i = 0; i < rounds; i++) {
    const g = await gateMs(candidate, baseline, join(tmp, "verdict.json"));
    gate.push(g.ms);
    cpu.push(g.cpuMs);
    paired.push(g.pairedMs);
    rows = g.rows;
    floor.push(await floorMs(candidate, baseline));
  }
  const result = {
    rows,
    gateMs: Math.round(median(gate)),
    gateCpuMs: Math.round(median(cpu)),
    loadAverage: loadavg()[0] ?? 0,
    pairedMs: Math.round(median(paired)),
    floorMs: Math.round(median(floor)),
    ratio: Math.round((median(gate) / median(floor)) * 100) / 100,
    goalMs: GOAL_MS,
    met: median(gate) < GOAL_MS,
    rounds: gate.map(Math.round),
  };
  if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      `${textTable(
        ["", "median ms", "rounds"],
        [
          ["modelship gate (process, end to end)", result.gateMs, gate.map((x) => x.toFixed(0)).join(" ")],
          ["  its CPU time (user + sys)", result.gateCpuMs, cpu.map((x) => x.toFixed(0)).join(" ")],
          ["  of which paired evaluation", result.pairedMs, paired.map((x) => x.toFixed(0)).join(" ")],
          ["floor: ORT, both models, same rows", result.floorMs, floor.map((x) => x.toFixed(0)).join(" ")],
        ],
      )}\n\n${rows} shared rows · gate / floor ${result.ratio}× · goal < ${GOAL_MS} ms: ${result.met ? "met" : "MISSED"} · load average ${result.loadAverage.toFixed(1)} on ${availableParallelism()} cores\n`,
    );
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
