/**
 * `npm run bench:path` — where a worker's CPU per request goes beyond the model, measured in one
 * process without sockets: the real app (`buildApp`, real model, metrics, drift, access log into
 * /dev/null) driven by fastify's `inject`, in variants that each drop one part. The difference to the
 * full path is what that part costs; `session.run` alone is the model's share. Interleaved rounds,
 * CPU µs per request (median). The socket side (HTTP parsing, the write syscalls) is what the
 * `node:http` hello floor of `bench:serve` measures.
 * Flags: --model <bundle> (default: the test suite's trained bundle) --seconds <s> (1) --rounds <n> (5) --json
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { buildApp } from "../serving/app.js";
import type { ServerContext } from "../serving/context.js";
import { DriftRecorder } from "../serving/drift.js";
import { LOG_BUFFER_BYTES, LOG_FLUSH_MS } from "../serving/logger.js";
import { createServerMetrics } from "../serving/metrics.js";
import { ServedModel, type ServedPrediction } from "../serving/model.js";
import { PredictionBook } from "../serving/predictions.js";
import { serveSettingsSchema } from "../serving/settings.js";
import { readBundle } from "../src/bundle/read.js";
import { textTable } from "../src/util/progress.js";

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    seconds: { type: "string", default: "1" },
    rounds: { type: "string", default: "5" },
    json: { type: "boolean", default: false },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const log = (s: string) => {
  if (!args.json) process.stderr.write(`${s}\n`);
};

const bundle = await readBundle(
  args.model ?? (await (await import("../test/support/bundle.js")).trainedBundle()),
);
const model = await ServedModel.open(bundle);
await model.verifyGolden(1e-4);
const texts = bundle.card.golden.map((g) => g.input as string);

interface Variant {
  name: string;
  accessLog: boolean;
  drift: boolean;
  /** Replace the model by canned predictions (what the rest of the path costs without it). */
  stubModel: boolean;
}

async function appFor(v: Variant) {
  const settings = serveSettingsSchema.parse({
    modelDir: bundle.dir,
    accessLog: v.accessLog,
    logLevel: "info",
  });
  const logger = pino(
    {
      level: "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({
      dest: "/dev/null",
      sync: false,
      ...(process.env.PATH_LOG_UNBUFFERED
        ? {}
        : { minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS }),
    }),
  );
  const metrics = createServerMetrics(bundle.card);
  // DriftRecorder reads its settings from the environment, as in a worker.
  const saved = process.env.MODELSHIP_DRIFT;
  process.env.MODELSHIP_DRIFT = v.drift ? "true" : "false";
  const drift = await DriftRecorder.open(bundle, () => {});
  if (saved === undefined) delete process.env.MODELSHIP_DRIFT;
  else process.env.MODELSHIP_DRIFT = saved;
  if (drift.settings.enabled !== v.drift) throw new Error("drift toggle did not apply");
  const canned = (await model.predict(texts)).slice();
  const served: ServedModel = v.stubModel
    ? (Object.assign(Object.create(Object.getPrototypeOf(model)), model, {
        predict: async (inputs: readonly string[]): Promise<ServedPrediction[]> =>
          inputs.map((_, i) => canned[i % canned.length]!),
      }) as ServedModel)
    : model;
  const ctx: ServerContext = {
    model: served,
    settings,
    metrics,
    book: new PredictionBook(metrics, bundle.card.io.labels, drift),
    state: { ready: true, draining: false },
    logger,
    clusterMetrics: async () => ({ contentType: "text/plain", text: "" }),
  };
  const app = buildApp(ctx);
  app.get("/hello", async () => ({ hello: "world" }));
  await app.ready();
  return app;
}

const variants: Variant[] = [
  { name: "full path (access log, drift, metrics, model)", accessLog: true, drift: true, stubModel: false },
  { name: "without the access log", accessLog: false, drift: true, stubModel: false },
  { name: "without drift accounting", accessLog: true, drift: false, stubModel: false },
  { name: "without the model (canned predictions)", accessLog: true, drift: true, stubModel: true },
  {
    name: "without model, log, drift (routing, JSON, validation, metrics)",
    accessLog: false,
    drift: false,
    stubModel: true,
  },
];
const bodies = {
  one: JSON.stringify({ text: texts[0] }),
  batch: JSON.stringify({ texts: Array.from({ length: 32 }, (_, i) => texts[i % texts.length]) }),
};
type App = Awaited<ReturnType<typeof appFor>>;
const apps: [Variant, App][] = [];
for (const v of variants) apps.push([v, await appFor(v)]);

async function measure(app: App, url: string, body: string | undefined): Promise<number> {
  const once = () =>
    app.inject(
      body === undefined
        ? { method: "GET", url }
        : { method: "POST", url, payload: body, headers: { "content-type": "application/json" } },
    );
  for (let i = 0; i < 50; i++) await once();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const c0 = process.cpuUsage();
  while (performance.now() < end) {
    const res = await once();
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
    n++;
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

async function sessionOnly(batch: number): Promise<number> {
  const inputs = Array.from({ length: batch }, (_, i) => texts[i % texts.length]!);
  for (let i = 0; i < 50; i++) await model.predict(inputs);
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const c0 = process.cpuUsage();
  while (performance.now() < end) {
    await model.predict(inputs);
    n++;
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const load0 = loadavg();
const results = new Map<string, { one: number[]; batch: number[] }>();
const add = (name: string, which: "one" | "batch", v: number) => {
  const r = results.get(name) ?? { one: [], batch: [] };
  r[which].push(v);
  results.set(name, r);
};
for (let r = 0; r < rounds; r++) {
  log(`round ${r + 1}/${rounds}...`);
  const order = r % 2 === 0 ? apps : [...apps].reverse();
  for (const [v, app] of order) {
    add(v.name, "one", await measure(app, "/predict", bodies.one));
    add(v.name, "batch", await measure(app, "/predict", bodies.batch));
  }
  add(
    "GET /hello on the same app (fastify + hooks + inject)",
    "one",
    await measure(apps[0]![1], "/hello", undefined),
  );
  add("model alone: ServedModel.predict (session.run)", "one", await sessionOnly(1));
  add("model alone: ServedModel.predict (session.run)", "batch", await sessionOnly(32));
}
for (const [, app] of apps) await app.close();
await model.close();

const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const a = [...xs].sort((x, y) => x - y);
  return a[Math.floor(a.length / 2)]!;
};
const rows = [...results].map(([name, r]) => ({ name, one: median(r.one), batch: median(r.batch) }));
const full = rows[0]!;
if (args.json) {
  process.stdout.write(
    `${JSON.stringify({ loadavg: load0, loadavgEnd: loadavg(), seconds, rounds, rows }, null, 2)}\n`,
  );
} else {
  const f = (n: number) => (Number.isNaN(n) ? "" : n.toFixed(1));
  const d = (n: number, base: number) =>
    Number.isNaN(n) ? "" : `${n - base >= 0 ? "+" : ""}${(n - base).toFixed(1)}`;
  process.stdout.write(
    `${textTable(
      [
        "variant",
        "1 text: CPU µs/req",
        "Δ vs full",
        "32 texts: CPU µs/req",
        "Δ vs full",
        "32 texts: µs/text",
      ],
      rows.map((r) => [
        r.name,
        f(r.one),
        r === full ? "" : d(r.one, full.one),
        f(r.batch),
        r === full || Number.isNaN(r.batch) ? "" : d(r.batch, full.batch),
        Number.isNaN(r.batch) ? "" : f(r.batch / 32),
      ]),
    )}\n`,
  );
  process.stdout.write(
    `in-process (fastify inject, no sockets), medians of ${rounds} interleaved rounds of ${seconds} s; load average at start ${load0
      .map((l) => l.toFixed(1))
      .join(" ")}, at end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}\n`,
  );
}
