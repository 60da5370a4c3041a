/**
 * `npm run bench:drift` — what drift accounting costs the server: POST /predict throughput and CPU per
 * request with drift on (default settings) and off (MODELSHIP_DRIFT=false), same bundle, same worker
 * count, runs interleaved off/on, on/off, … so a busy neighbour on a shared machine hits both alike.
 * Goal: on ≥ 0.95 × off (≤ 5 % throughput cost). CPU µs/request is printed too, and — steadiest on a
 * shared machine — the in-process cost of the drift accounting per prediction (counting + tokenizing +
 * serializing the chunk message) as a share of the server's CPU per request with drift off.
 * Flags: --model <bundle> (default: the test suite's trained bundle) --duration <s> (8) --rounds <n> (3)
 *        --workers <n> --connections <n> (32) --json
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { readBundle } from "../src/bundle/read.js";
import { layoutOf } from "../src/drift/counts.js";
import { readTextProfile } from "../src/drift/vocabulary.js";
import { ChunkCounter } from "../src/drift/window.js";
import { textTable } from "../src/util/progress.js";
import { httpLoad, startServer, stopServer, treeCpuSeconds } from "./support.js";

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    duration: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
    workers: { type: "string", default: String(availableParallelism()) },
    connections: { type: "string", default: "32" },
    json: { type: "boolean", default: false },
  },
});

/** In-process µs per prediction of what a worker adds with drift on: ChunkCounter.add + the chunk message. */
async function accountingMicros(
  modelPath: string,
  card: Awaited<ReturnType<typeof readBundle>>["card"],
  texts: string[],
) {
  const counter = new ChunkCounter(
    layoutOf(card.reference, card.io.labels),
    await readTextProfile(modelPath),
  );
  let sink = 0;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      counter.add({
        input: texts[i % texts.length]!,
        classIndex: i % card.io.labels.length,
        confidence: 0.8,
      });
      if (counter.size >= 50)
        sink += JSON.stringify({ type: "modelship:drift-chunk", counts: counter.take(), log: [] }).length;
    }
  };
  run(20_000);
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    run(50_000);
    samples.push(((performance.now() - t0) * 1000) / 50_000);
  }
  return sink > 0 ? median(samples) : Number.NaN;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const modelDir = args.model ?? (await (await import("../test/support/bundle.js")).trainedBundle());
  const bundle = await readBundle(modelDir);
  const { card, dir } = bundle;
  const texts = card.golden.map((g) => g.input as string);
  const bodies = [
    { name: "1 text", body: JSON.stringify({ text: texts[0] }) },
    {
      name: "32 texts",
      body: JSON.stringify({ texts: Array.from({ length: 32 }, (_, i) => texts[i % texts.length]) }),
    },
  ];
  const seconds = Number(args.duration);
  const rounds = Number(args.rounds);
  const results: { case: string; drift: "off" | "on"; rps: number; cpuUs: number; errors: number }[] = [];
  for (const b of bodies) {
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so a trend in the neighbours' load cannot favour one side.
      for (const drift of round % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const)) {
        if (!args.json) process.stderr.write(`${b.name}, drift ${drift}, round ${round + 1}/${rounds}...\n`);
        const { child, port } = await startServer(["dist/serving/main.js"], {
          MODELSHIP_MODEL_DIR: dir,
          PORT: "0",
          HOST: "127.0.0.1",
          MODELSHIP_WORKERS: args.workers!,
          MODELSHIP_ACCESS_LOG: "0",
          MODELSHIP_DRIFT: drift === "on" ? "true" : "false",
        });
        await httpLoad(`http://127.0.0.1:${port}/predict`, {
          body: b.body,
          seconds: 1,
          connections: Number(args.connections),
        }); // warm-up
        const cpu0 = await treeCpuSeconds(child.pid!);
        const r = await httpLoad(`http://127.0.0.1:${port}/predict`, {
          body: b.body,
          seconds: seconds,
          connections: Number(args.connections),
        });
        const cpuUs = (((await treeCpuSeconds(child.pid!)) - cpu0) / r.requests) * 1e6;
        results.push({ case: b.name, drift, rps: r.rps, cpuUs, errors: r.errors });
        await stopServer(child);
      }
    }
  }
  const perPrediction = await accountingMicros(bundle.modelPath, card, texts);
  const summary = bodies.map((b, i) => {
    const pick = (d: "off" | "on") => results.filter((r) => r.case === b.name && r.drift === d);
    const off = {
      rps: median(pick("off").map((r) => r.rps)),
      cpuUs: median(pick("off").map((r) => r.cpuUs)),
    };
    const on = { rps: median(pick("on").map((r) => r.rps)), cpuUs: median(pick("on").map((r) => r.cpuUs)) };
    const items = i === 0 ? 1 : 32;
    return {
      case: b.name,
      off,
      on,
      throughputRatio: on.rps / off.rps,
      cpuRatio: on.cpuUs / off.cpuUs,
      accountingShare: (perPrediction * items) / off.cpuUs,
    };
  });
  if (args.json) {
    process.stdout.write(
      `${JSON.stringify({ model: `${card.name} ${card.version}`, workers: Number(args.workers), results, accountingMicrosPerPrediction: perPrediction, summary }, null, 2)}\n`,
    );
    return;
  }
  process.stdout.write(
    `${textTable(
      [
        "/predict",
        "req/s off",
        "req/s on",
        "on ÷ off",
        "CPU µs/req off",
        "CPU µs/req on",
        "CPU on ÷ off",
        "accounting ÷ CPU/req",
      ],
      summary.map((s) => [
        s.case,
        Math.round(s.off.rps),
        Math.round(s.on.rps),
        s.throughputRatio.toFixed(3),
        Math.round(s.off.cpuUs),
        Math.round(s.on.cpuUs),
        s.cpuRatio.toFixed(3),
        `${(s.accountingShare * 100).toFixed(1)} %`,
      ]),
    )}\n`,
  );
  process.stdout.write(
    `medians of ${rounds} interleaved ${seconds}s runs, ${args.workers} workers, ${args.connections} connections; goal: on ÷ off ≥ 0.95\n` +
      `drift accounting in-process: ${perPrediction.toFixed(2)} µs per prediction (counting, tokenizing, chunk message); "accounting ÷ CPU/req" = that × texts per request ÷ server CPU per request with drift off\n`,
  );
}

await main();
