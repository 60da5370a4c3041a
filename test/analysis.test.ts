import { describe, expect, it } from "vitest";
import {
  analyseInterval,
  analysisConfigSchema,
  explain,
  serverMetrics as N,
  psi,
  type RouterCounters,
  type Scrape,
  totalVariation,
} from "../src/analysis/analysis.js";
import {
  binsFromCumulative,
  histogramBuckets,
  histogramDelta,
  histogramQuantile,
  parsePromText,
} from "../src/analysis/prom.js";

const config = analysisConfigSchema.parse({});
const LAT_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const CONF_BOUNDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

interface ServerState {
  ok: number;
  err: number;
  /** Latency observations in seconds. */
  latencies: number[];
  classes: Record<string, number>;
  confidences: number[];
}

/** Renders a model server's /metrics the way prom-client does. */
function exposition(s: ServerState): string {
  const lines = [
    `# HELP ${N.requests} requests`,
    `# TYPE ${N.requests} counter`,
    `${N.requests}{route="/predict",method="POST",${N.statusLabel}="200"} ${s.ok}`,
    `${N.requests}{route="/predict",method="POST",${N.statusLabel}="500"} ${s.err}`,
    `${N.requests}{route="/health",method="GET",${N.statusLabel}="200"} 1234`,
  ];
  const hist = (name: string, bounds: number[], values: number[], labels: string) => {
    for (const b of bounds)
      lines.push(`${name}_bucket{${labels}le="${b}"} ${values.filter((v) => v <= b).length}`);
    lines.push(`${name}_bucket{${labels}le="+Inf"} ${values.length}`);
    lines.push(`${name}_sum{${labels.replace(/,$/, "")}} ${values.reduce((a, b) => a + b, 0)}`);
    lines.push(`${name}_count{${labels.replace(/,$/, "")}} ${values.length}`);
  };
  hist(N.latency, LAT_BOUNDS, s.latencies, 'route="/predict",');
  // health checks are fast and frequent: they must not dilute the predict latency
  hist(N.latency, LAT_BOUNDS, Array(500).fill(0.0001), 'route="/ready",');
  for (const [k, v] of Object.entries(s.classes)) lines.push(`${N.predictions}{${N.classLabel}="${k}"} ${v}`);
  hist(N.confidence, CONF_BOUNDS, s.confidences, "");
  lines.push('modelship_model_info{version="v1",sha256="ab"} 1');
  return lines.join("\n");
}

const empty = (): ServerState => ({ ok: 0, err: 0, latencies: [], classes: {}, confidences: [] });

/** Adds n predictions answered in `latency` seconds, with the given class shares and confidences. */
function serve(
  s: ServerState,
  n: number,
  opts: { latency?: number; negShare?: number; err?: number; conf?: (i: number) => number } = {},
): ServerState {
  const neg = Math.round(n * (opts.negShare ?? 0.8));
  const conf = opts.conf ?? ((i: number) => 0.55 + ((i * 7) % 45) / 100);
  const ok = n - (opts.err ?? 0);
  return {
    ok: s.ok + ok,
    err: s.err + (opts.err ?? 0),
    latencies: [...s.latencies, ...Array(ok).fill(opts.latency ?? 0.004)],
    classes: {
      negative: (s.classes.negative ?? 0) + (opts.err ? 0 : neg),
      positive: (s.classes.positive ?? 0) + (opts.err ? 0 : n - neg),
    },
    confidences: [...s.confidences, ...(opts.err ? [] : Array.from({ length: n }, (_, i) => conf(i)))],
  };
}

const router = (responses: number, http5xx = 0, status = "UP"): RouterCounters => ({
  responses,
  http5xx,
  failures: 0,
  status,
});

function scrape(at: number, canary: ServerState, stable: ServerState | null, canaryStatus = "UP"): Scrape {
  return {
    at,
    canary: {
      router: router(canary.ok + canary.err, canary.err, canaryStatus),
      metrics: parsePromText(exposition(canary)),
    },
    stable: stable
      ? { router: router(stable.ok + stable.err), metrics: parsePromText(exposition(stable)) }
      : null,
  };
}

function interval(
  canaryWork: (s: ServerState) => ServerState,
  stableWork: (s: ServerState) => ServerState,
  canaryStatus = "UP",
) {
  // Both servers already served traffic before the interval: only the deltas may count.
  const c0 = serve(empty(), 300, { negShare: 0.2, latency: 0.4 });
  const s0 = serve(empty(), 5000);
  return [scrape(0, c0, s0), scrape(10_000, canaryWork(c0), stableWork(s0), canaryStatus)] as const;
}

describe("prometheus text and histograms", () => {
  it("parses labels with escapes, +Inf and skips comments", () => {
    const s = parsePromText(
      '# HELP x y\nfoo{a="b\\"c",le="+Inf"} 3\nbar 1.5e3\nbaz{x="1"} NaN 1700000000\n\nbroken line here',
    );
    expect(s[0]).toEqual({ name: "foo", labels: { a: 'b"c', le: "+Inf" }, value: 3 });
    expect(s[1]?.value).toBe(1500);
    expect(Number.isNaN(s[2]?.value)).toBe(true);
    expect(s).toHaveLength(3);
  });

  it("quantiles interpolate inside the bucket like PromQL's histogram_quantile", () => {
    // 100 observations: 50 in (0,0.01], 40 in (0.01,0.1], 10 in (0.1,1]
    const cum: Array<[number, number]> = [
      [0.01, 50],
      [0.1, 90],
      [1, 100],
      [Number.POSITIVE_INFINITY, 100],
    ];
    expect(histogramQuantile(0.5, cum)).toBeCloseTo(0.01);
    expect(histogramQuantile(0.7, cum)).toBeCloseTo(0.01 + 0.09 * 0.5);
    expect(histogramQuantile(0.95, cum)).toBeCloseTo(0.1 + 0.9 * 0.5);
    expect(histogramQuantile(0.95, [[1, 0]])).toBeUndefined();
    expect(binsFromCumulative(cum)).toEqual([50, 40, 10]);
  });

  it("bucket deltas ignore history before the interval and survive a counter reset", () => {
    const a = histogramBuckets(parsePromText('h_bucket{le="1"} 10\nh_bucket{le="+Inf"} 12'), "h");
    const b = histogramBuckets(parsePromText('h_bucket{le="1"} 15\nh_bucket{le="+Inf"} 20'), "h");
    expect(histogramDelta(a, b)).toEqual([
      [1, 5],
      [Number.POSITIVE_INFINITY, 8],
    ]);
    const restarted = histogramBuckets(parsePromText('h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 3'), "h");
    expect(histogramDelta(a, restarted)).toEqual([
      [1, 2],
      [Number.POSITIVE_INFINITY, 3],
    ]);
  });

  it("PSI is 0 for the same distribution and large for a shifted one; TV distance is half L1", () => {
    expect(psi([10, 20, 30], [20, 40, 60])).toBeCloseTo(0);
    expect(psi([80, 10, 10], [10, 10, 80])).toBeGreaterThan(1);
    expect(totalVariation({ a: 0.8, b: 0.2 }, { a: 0.2, b: 0.8 })).toBeCloseTo(0.6);
  });
});

describe("canary analysis", () => {
  it("passes a healthy canary that behaves like stable", () => {
    const [s, e] = interval(
      (c) => serve(c, 400),
      (st) => serve(st, 8000),
    );
    const r = analyseInterval(s, e, config);
    expect(r.verdict, explain(r)).toBe("pass");
    expect(r.figures.canaryRequests).toBe(400);
    expect(r.figures.canaryErrors).toBe(0);
    // 4 ms observations in the (2.5ms, 5ms] bucket: p95 interpolates inside it
    expect(r.figures.canaryP95Ms).toBeGreaterThan(2.5);
    expect(r.figures.canaryP95Ms).toBeLessThanOrEqual(5);
    expect(r.figures.canaryClassMix.negative).toBeCloseTo(0.8);
    expect(r.checks.map((c) => c.name)).toEqual([
      "healthy",
      "error-rate",
      "latency-p95",
      "latency-p99",
      "class-mix",
      "confidence-psi",
    ]);
    for (const c of r.checks) expect(c.message.length).toBeGreaterThan(10);
  });

  it("fails a canary that answers 500", () => {
    const [s, e] = interval(
      (c) => serve(c, 60, { err: 60 }),
      (st) => serve(st, 8000),
    );
    const r = analyseInterval(s, e, config);
    expect(r.verdict).toBe("fail");
    const err = r.checks.find((c) => c.name === "error-rate")!;
    expect(err.status).toBe("fail");
    expect(err.value).toBe(1);
    expect(err.message).toMatch(/100\.00% \(60\/60\) > 1\.00%/);
    expect(explain(r)).toMatch(/^error-rate:/);
  });

  it("counts 5xx the server saw even when HAProxy retried them away from users", () => {
    const [s, e] = interval(
      (c) => serve(c, 100, { err: 100 }),
      (st) => serve(st, 8000),
    );
    // HAProxy's server counters show no 5xx (retried); the server's own counters do.
    e.canary.router = router(s.canary.router!.responses);
    const r = analyseInterval(s, e, config);
    expect(r.checks.find((c) => c.name === "error-rate")?.status).toBe("fail");
  });

  it("fails on flipped predictions (200 OK, wrong labels) through the class-mix check", () => {
    const [s, e] = interval(
      (c) => serve(c, 400, { negShare: 0.2 }),
      (st) => serve(st, 8000, { negShare: 0.8 }),
    );
    const r = analyseInterval(s, e, config);
    expect(r.verdict).toBe("fail");
    const mix = r.checks.find((c) => c.name === "class-mix")!;
    expect(mix.status).toBe("fail");
    expect(mix.value).toBeCloseTo(0.6);
    expect(mix.message).toMatch(/canary negative 20% \/ positive 80% vs stable negative 80% \/ positive 20%/);
    expect(r.checks.find((c) => c.name === "error-rate")?.status).toBe("pass");
  });

  it("fails when the confidence distribution moves although the class mix does not", () => {
    const [s, e] = interval(
      (c) => serve(c, 400, { conf: () => 0.52 }),
      (st) => serve(st, 8000),
    );
    const r = analyseInterval(s, e, config);
    expect(r.checks.find((c) => c.name === "class-mix")?.status).toBe("pass");
    expect(r.checks.find((c) => c.name === "confidence-psi")?.status).toBe("fail");
  });

  it("fails a slow canary: absolute limit and relative to stable", () => {
    const [s, e] = interval(
      (c) => serve(c, 400, { latency: 0.08 }),
      (st) => serve(st, 8000, { latency: 0.004 }),
    );
    const r = analyseInterval(s, e, config);
    const p95 = r.checks.find((c) => c.name === "latency-p95")!;
    expect(p95.status).toBe("fail");
    expect(p95.threshold).toBeLessThan(35); // 2 × ~5ms + 20ms slack, well under the 250ms absolute limit
    const [s2, e2] = interval(
      (c) => serve(c, 400, { latency: 0.4 }),
      (st) => serve(st, 8000, { latency: 0.4 }),
    );
    const abs = analyseInterval(s2, e2, config).checks.find((c) => c.name === "latency-p95")!;
    expect(abs.status).toBe("fail");
    expect(abs.threshold).toBe(250);
  });

  it("does not judge p99 on too few samples (one slow request is not a p99)", () => {
    const [s, e] = interval(
      (c) => serve(serve(c, 59, { latency: 0.004 }), 1, { latency: 0.4 }),
      (st) => serve(st, 8000),
    );
    const p99 = analyseInterval(s, e, config).checks.find((c) => c.name === "latency-p99")!;
    expect(p99.status).toBe("pass");
    expect(p99.message).toMatch(/p99 not judged yet: 60 canary requests \(needs 200\)/);
  });

  it("is inconclusive on too little traffic, unless no-data is allowed", () => {
    const [s, e] = interval(
      (c) => serve(c, 5),
      (st) => serve(st, 100),
    );
    const r = analyseInterval(s, e, config);
    expect(r.verdict).toBe("inconclusive");
    expect(explain(r)).toMatch(/only 5 canary responses \(need 20\)/);
    expect(analyseInterval(s, e, config, { allowNoData: true }).verdict).toBe("pass");
  });

  it("a few 5xx on little traffic are still a failure, not 'no data'", () => {
    const [s, e] = interval(
      (c) => serve(c, 5, { err: 3 }),
      (st) => serve(st, 100),
    );
    expect(analyseInterval(s, e, config).checks.find((c) => c.name === "error-rate")?.status).toBe("fail");
  });

  it("fails an unhealthy canary (down in HAProxy or metrics unreachable)", () => {
    const [s, e] = interval(
      (c) => serve(c, 400),
      (st) => serve(st, 8000),
      "DOWN",
    );
    expect(analyseInterval(s, e, config).checks[0]).toMatchObject({ name: "healthy", status: "fail" });
    const [s2, e2] = interval(
      (c) => serve(c, 400),
      (st) => serve(st, 8000),
    );
    e2.canary.metrics = null;
    const h = analyseInterval(s2, e2, config).checks[0]!;
    expect(h.status).toBe("fail");
    expect(h.message).toMatch(/metrics unreachable/);
  });

  it("compares with the bundle reference when asked", () => {
    const [s, e] = interval(
      (c) => serve(c, 400, { negShare: 0.2 }),
      (st) => serve(st, 8000, { negShare: 0.2 }),
    );
    const reference = {
      rows: 100,
      classMix: { negative: 0.8, positive: 0.2 },
      scoreHistogram: { edges: [0, 1], counts: [1] },
    };
    const cfg = analysisConfigSchema.parse({ maxReferenceShift: 0.2 });
    const r = analyseInterval(s, e, cfg, { reference });
    expect(r.checks.find((c) => c.name === "class-mix")?.status).toBe("pass");
    expect(r.checks.find((c) => c.name === "reference-mix")?.status).toBe("fail");
  });
});
