import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePromText, type Sample, sumOf } from "../src/analysis/prom.js";
import { readBundle } from "../src/bundle/read.js";
import type { ModelCard } from "../src/contracts/card.js";
import { trainedBundle } from "./support/bundle.js";
import { type Answer, postJson, type RunningServer, request, startServer } from "./support/serving.js";

// One real server (2 workers, real onnxruntime-node, the model trained from the real dataset) for the file.
let server: RunningServer;
let card: ModelCard;
let url: string;

const LIMITS = {
  MODELSHIP_WORKERS: "2",
  MODELSHIP_MAX_TEXT_CHARS: "2000",
  MODELSHIP_MAX_BATCH_TEXTS: "64",
  MODELSHIP_BODY_LIMIT_BYTES: "65536",
  MODELSHIP_MAX_HEADER_BYTES: "8192",
};

beforeAll(async () => {
  const dir = await trainedBundle();
  card = (await readBundle(dir)).card;
  server = await startServer(dir, LIMITS);
  url = server.url;
});

afterAll(async () => {
  if (server) expect(await server.stop()).toBe(0);
});

async function scrape(): Promise<Sample[]> {
  const res = await request(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers["content-type"]).toMatch(/^text\/plain/);
  return parsePromText(res.text);
}

describe("status endpoints", () => {
  it("/health and /ready answer 200 once warmed up", async () => {
    const health = await request(`${url}/health`);
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: "ok" });
    const ready = await request(`${url}/ready`);
    expect(ready.status).toBe(200);
    expect(ready.json()).toEqual({ ready: true });
  });

  it("/model-info summarises the bundle's card", async () => {
    const res = await request(`${url}/model-info`);
    expect(res.status).toBe(200);
    const info = res.json() as Record<string, unknown>;
    expect(info).toMatchObject({
      name: card.name,
      version: card.version,
      sha256: card.model.sha256,
      task: "text-classification",
      labels: card.io.labels,
      metrics: { accuracy: card.metrics.accuracy, macroF1: card.metrics.macroF1 },
    });
    expect(card.metrics.accuracy).toBeGreaterThan(0.85);
  });
});

describe("POST /predict", () => {
  it("answers a single text in the tutorial's shape", async () => {
    const res = await postJson(`${url}/predict`, {
      text: "Thank you so much, the crew was wonderful and the flight was great!",
    });
    expect(res.status).toBe(200);
    const body = res.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["confidence", "model_version", "sentiment", "text"]);
    expect(body.sentiment).toBe("positive");
    expect(body.model_version).toBe(card.version);
    expect(body.text).toBe("Thank you so much, the crew was wonderful and the flight was great!");
    expect(body.confidence as number).toBeGreaterThan(50);
    expect(body.confidence as number).toBeLessThanOrEqual(100);
  });

  it("answers a batch with one prediction per text, equal to the single answers", async () => {
    const texts = [
      "Worst airline ever, lost my bag and nobody helps",
      "great service, thanks!",
      "flight delayed again for 3 hours, cancelled connection",
    ];
    const res = await postJson(`${url}/predict`, { texts });
    expect(res.status).toBe(200);
    const body = res.json() as {
      predictions: { text: string; sentiment: string; confidence: number }[];
      model_version: string;
    };
    expect(Object.keys(body).sort()).toEqual(["model_version", "predictions"]);
    expect(body.model_version).toBe(card.version);
    expect(body.predictions.map((p) => p.text)).toEqual(texts);
    expect(body.predictions.map((p) => p.sentiment)).toEqual(["negative", "positive", "negative"]);
    for (const [i, text] of texts.entries()) {
      const single = (await postJson(`${url}/predict`, { text })).json() as {
        sentiment: string;
        confidence: number;
      };
      expect(single.sentiment).toBe(body.predictions[i]!.sentiment);
      expect(single.confidence).toBe(body.predictions[i]!.confidence);
    }
  });

  it("reproduces every golden example of the bundle (label and confidence)", async () => {
    const texts = card.golden.map((g) => g.input as string);
    const res = await postJson(`${url}/predict`, { texts });
    expect(res.status).toBe(200);
    const { predictions } = res.json() as { predictions: { sentiment: string; confidence: number }[] };
    card.golden.forEach((g, i) => {
      expect(predictions[i]!.sentiment).toBe(g.expected.label);
      expect(predictions[i]!.confidence).toBeCloseTo(Math.max(...g.expected.probabilities) * 100, 1);
    });
  });
});

describe("requests arriving together share a model run", () => {
  it("concurrent keep-alive requests coalesce, and each gets the answer it gets alone", async () => {
    const texts = card.golden.map((g) => g.input as string).slice(0, 24);
    const single = await Promise.all(
      texts.map(
        async (text) => (await postJson(`${url}/predict`, { text })).json() as Record<string, unknown>,
      ),
    );
    const agent = new Agent({ keepAlive: true, maxSockets: texts.length });
    const send = (text: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = httpRequest(
          `${url}/predict`,
          { method: "POST", agent, headers: { "content-type": "application/json" } },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => {
              body += c;
            });
            res.on("end", () => resolve(JSON.parse(body) as Record<string, unknown>));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ text }));
      });
    try {
      const before = await scrape();
      let answered = 0;
      for (let round = 0; round < 8; round++) {
        const got = await Promise.all(texts.map(send));
        got.forEach((answer, i) => {
          expect(answer.text).toBe(texts[i]);
          expect(answer.sentiment).toBe(single[i]!.sentiment);
          expect(
            Math.abs((answer.confidence as number) - (single[i]!.confidence as number)),
          ).toBeLessThanOrEqual(0.01);
        });
        answered += got.length;
      }
      const after = await scrape();
      const delta = (name: string) => sumOf(after, name) - sumOf(before, name);
      // Same-turn requests exist under concurrency; the counters say how many shared a run.
      expect(delta("modelship_model_coalesced_requests_total")).toBeGreaterThan(0);
      expect(delta("modelship_model_runs_total")).toBeLessThan(answered);
    } finally {
      agent.destroy();
    }
  });
});

describe("Open Inference Protocol v2", () => {
  it("health, server metadata, model metadata and model readiness", async () => {
    expect((await request(`${url}/v2/health/live`)).json()).toEqual({ live: true });
    const ready = await request(`${url}/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.json()).toEqual({ ready: true });
    const server = (await request(`${url}/v2`)).json() as Record<string, unknown>;
    expect(server).toMatchObject({ name: "modelship", extensions: [] });
    expect(typeof server.version).toBe("string");
    for (const path of [`/v2/models/${card.name}`, `/v2/models/${card.name}/versions/${card.version}`]) {
      const meta = await request(`${url}${path}`);
      expect(meta.status).toBe(200);
      expect(meta.json()).toEqual({
        name: card.name,
        versions: [card.version],
        platform: "onnxruntime_onnx",
        inputs: [{ name: card.io.inputs[0]!.name, datatype: "BYTES", shape: [-1] }],
        outputs: [
          { name: card.io.probabilitiesOutput, datatype: "FP32", shape: [-1, card.io.labels.length] },
          { name: card.io.labelOutput, datatype: "BYTES", shape: [-1] },
        ],
      });
      const modelReady = await request(`${url}${path}/ready`);
      expect(modelReady.json()).toEqual({ name: card.name, ready: true });
    }
  });

  it("infers golden examples with BYTES input to within 1e-4 of the bundle's probabilities", async () => {
    const texts = card.golden.map((g) => g.input as string);
    const res = await postJson(`${url}/v2/models/${card.name}/infer`, {
      id: "golden-1",
      inputs: [{ name: card.io.inputs[0]!.name, shape: [texts.length], datatype: "BYTES", data: texts }],
    });
    expect(res.status).toBe(200);
    const body = res.json() as {
      model_name: string;
      model_version: string;
      id: string;
      outputs: { name: string; datatype: string; shape: number[]; data: (number | string)[] }[];
    };
    expect(body).toMatchObject({ model_name: card.name, model_version: card.version, id: "golden-1" });
    const [probs, labels] = body.outputs;
    const C = card.io.labels.length;
    expect(probs).toMatchObject({
      name: card.io.probabilitiesOutput,
      datatype: "FP32",
      shape: [texts.length, C],
    });
    expect(labels).toMatchObject({ name: card.io.labelOutput, datatype: "BYTES", shape: [texts.length] });
    card.golden.forEach((g, i) => {
      g.expected.probabilities.forEach((p, j) => {
        expect(Math.abs((probs!.data[i * C + j] as number) - p)).toBeLessThanOrEqual(1e-4);
      });
      expect(labels!.data[i]).toBe(g.expected.label);
    });
  });

  it("accepts nested [N, 1] data and an output selection", async () => {
    const res = await postJson(`${url}/v2/models/${card.name}/versions/${card.version}/infer`, {
      inputs: [
        {
          name: card.io.inputs[0]!.name,
          shape: [2, 1],
          datatype: "BYTES",
          data: [["love it"], ["hate it, delayed"]],
        },
      ],
      outputs: [{ name: card.io.labelOutput }],
    });
    expect(res.status).toBe(200);
    const body = res.json() as { id?: string; outputs: unknown[] };
    expect(body.id).toBeUndefined();
    expect(body.outputs).toEqual([
      { name: card.io.labelOutput, datatype: "BYTES", shape: [2], data: ["positive", "negative"] },
    ]);
  });
});

/** Raw bytes on a socket: for requests an HTTP client refuses to send. */
function raw(payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, "127.0.0.1", () => socket.end(payload));
    let out = "";
    socket.on("data", (d) => {
      out += d.toString();
    });
    socket.on("end", () => resolve(out));
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
  });
}

describe("bad input: always a one-line 4xx JSON error, never a 5xx", () => {
  const name = () => card.name;
  const input = () => card.io.inputs[0]!.name;
  const infer = (body: unknown) => postJson(`${url}/v2/models/${name()}/infer`, body);
  const tensor = (over: Record<string, unknown> = {}) => ({
    name: input(),
    shape: [1],
    datatype: "BYTES",
    data: ["hi"],
    ...over,
  });
  const cases: [string, () => Promise<Answer>, number, RegExp][] = [
    ["malformed JSON", () => postJson(`${url}/predict`, '{"text": "unterminated'), 400, /not valid JSON/],
    ["empty JSON body", () => postJson(`${url}/predict`, ""), 400, /empty/],
    ["body not an object", () => postJson(`${url}/predict`, [1, 2]), 400, /body must be an object/],
    [
      "text of the wrong type",
      () => postJson(`${url}/predict`, { text: 42 }),
      400,
      /body\.text must be a string/,
    ],
    ["null text", () => postJson(`${url}/predict`, { text: null }), 400, /body\.text must be a string/],
    [
      "missing text and texts",
      () => postJson(`${url}/predict`, { txt: "typo" }),
      400,
      /exactly one of "text".*"texts"/,
    ],
    [
      "both text and texts",
      () => postJson(`${url}/predict`, { text: "a", texts: ["b"] }),
      400,
      /exactly one of/,
    ],
    ["empty text", () => postJson(`${url}/predict`, { text: "" }), 400, /body\.text must not be empty/],
    [
      "huge text",
      () => postJson(`${url}/predict`, { text: "a".repeat(2001) }),
      400,
      /body\.text is too long \(more than 2000/,
    ],
    ["empty texts", () => postJson(`${url}/predict`, { texts: [] }), 400, /body\.texts must not be empty/],
    [
      "too many texts",
      () => postJson(`${url}/predict`, { texts: Array(65).fill("x") }),
      400,
      /body\.texts has too many items \(at most 64\)/,
    ],
    [
      "a text of the wrong type in a batch",
      () => postJson(`${url}/predict`, { texts: ["ok", 7] }),
      400,
      /body\.texts\[1\] must be a string/,
    ],
    [
      "wrong content type",
      () =>
        request(`${url}/predict`, {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: "hello",
        }),
      415,
      /unsupported content type "text\/plain"/,
    ],
    [
      "form content type",
      () =>
        request(`${url}/predict`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "text=hi",
        }),
      415,
      /send application\/json/,
    ],
    [
      "body over the limit",
      () => postJson(`${url}/predict`, { texts: Array(40).fill("a".repeat(1990)) }),
      413,
      /too large \(limit 65536 bytes\)/,
    ],
    ["unknown route", () => request(`${url}/predictions`), 404, /no such route: GET \/predictions/],
    [
      "a route with a trailing slash",
      () => postJson(`${url}/predict/`, { text: "x" }),
      404,
      /no such route: POST \/predict\//,
    ],
    [
      "wrong method on /predict",
      () => request(`${url}/predict`),
      405,
      /method GET not allowed on \/predict; use POST/,
    ],
    ["wrong method on /health", () => request(`${url}/health`, { method: "DELETE" }), 405, /use GET/],
    ["unknown model metadata", () => request(`${url}/v2/models/nope`), 404, /unknown model 'nope'/],
    [
      "unknown model infer",
      () => postJson(`${url}/v2/models/nope/infer`, { inputs: [tensor()] }),
      404,
      /unknown model 'nope'/,
    ],
    [
      "unknown model version",
      () => request(`${url}/v2/models/${name()}/versions/1`),
      404,
      /unknown version '1'/,
    ],
    ["infer without inputs", () => infer({}), 400, /missing required field "inputs"/],
    [
      "infer with a wrong input name",
      () => infer({ inputs: [tensor({ name: "x" })] }),
      400,
      /unknown input 'x'/,
    ],
    [
      "infer with a wrong datatype",
      () => infer({ inputs: [tensor({ datatype: "FP32", data: [1] })] }),
      400,
      /must have datatype BYTES, got FP32/,
    ],
    [
      "infer with shape and data disagreeing",
      () => infer({ inputs: [tensor({ shape: [3] })] }),
      400,
      /has 1 elements but shape \[3\] needs 3/,
    ],
    [
      "infer with a number among texts",
      () => infer({ inputs: [tensor({ shape: [2], data: ["a", 1] })] }),
      400,
      /element 1 must be a string/,
    ],
    [
      "infer with too many rows",
      () => infer({ inputs: [tensor({ shape: [65], data: Array(65).fill("x") })] }),
      400,
      /at most 64 per request/,
    ],
    [
      "infer with an unknown output",
      () => infer({ inputs: [tensor()], outputs: [{ name: "logits" }] }),
      400,
      /unknown output 'logits'/,
    ],
    [
      "infer with a negative shape",
      () => infer({ inputs: [tensor({ shape: [-1] })] }),
      400,
      /shape\[0\] must be >= 0/,
    ],
    ["wrong method on infer", () => request(`${url}/v2/models/${name()}/infer`), 405, /use POST/],
  ];

  for (const [what, send, status, message] of cases) {
    it(`${what} → ${status}`, async () => {
      const res = await send();
      expect(res.status, res.text).toBe(status);
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      const body = res.json() as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(["error"]);
      expect(body.error).toMatch(message);
      expect(body.error as string).not.toContain("\n");
      if (status === 405) expect(res.headers.allow).toMatch(/POST|GET/);
    });
  }

  it("oversized headers → 431, garbage → 400, both as JSON", async () => {
    const big = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(10_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(big).toContain('{"error":"request headers too large"}');
    const garbage = await raw("THIS IS NOT HTTP\r\n\r\n");
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toContain('{"error":"malformed HTTP request"}');
  });

  it("none of the above produced a 5xx, and the server still serves", async () => {
    const samples = await scrape();
    const fiveXX = sumOf(samples, "modelship_http_requests_total", (l) => /^5/.test(l.status ?? ""));
    expect(fiveXX).toBe(0);
    const fourXX = sumOf(samples, "modelship_http_requests_total", (l) => /^4/.test(l.status ?? ""));
    expect(fourXX).toBeGreaterThanOrEqual(cases.length);
    expect((await postJson(`${url}/predict`, { text: "still here?" })).status).toBe(200);
  });
});

describe("metrics and logs", () => {
  it("aggregates counters across both workers", async () => {
    const before = await scrape();
    const n = 40;
    for (let i = 0; i < n; i++) {
      // Fresh connections, so the cluster spreads them over the workers.
      const res = await postJson(
        `${url}/predict`,
        { text: `request number ${i}, thanks for the great flight` },
        { "x-request-id": `agg-${i}` },
      );
      expect(res.status).toBe(200);
    }
    const after = await scrape();
    const delta = (name: string, filter?: (l: Record<string, string>) => boolean) =>
      sumOf(after, name, filter) - sumOf(before, name, filter);
    expect(delta("modelship_predictions_total")).toBe(n);
    expect(delta("modelship_prediction_confidence_count")).toBe(n);
    expect(delta("modelship_http_requests_total", (l) => l.route === "/predict" && l.status === "200")).toBe(
      n,
    );
    expect(delta("modelship_http_request_duration_seconds_count", (l) => l.route === "/predict")).toBe(n);

    // The access log says which worker served each: both did, so the totals above are sums.
    const workers = new Set(
      server.logs
        .filter((l) => typeof l.reqId === "string" && (l.reqId as string).startsWith("agg-"))
        .map((l) => l.worker),
    );
    expect(workers.size).toBe(2);

    expect(sumOf(after, "modelship_worker_ready")).toBe(2);
    expect(after.filter((s) => s.name === "modelship_worker_resident_memory_bytes")).toHaveLength(2);
    const info = after.filter((s) => s.name === "modelship_model_info");
    expect(info).toEqual([
      {
        name: "modelship_model_info",
        labels: { name: card.name, version: card.version, sha256: card.model.sha256 },
        value: 1,
      },
    ]);
    expect(after.some((s) => s.name === "process_cpu_user_seconds_total")).toBe(true);
    expect(after.some((s) => s.name === "modelship_http_requests_in_flight")).toBe(true);
    // Every label present, even at zero, so canary deltas start from a known value.
    for (const label of card.io.labels) {
      expect(after.some((s) => s.name === "modelship_predictions_total" && s.labels.class === label)).toBe(
        true,
      );
    }
  });

  it("uses the bundle's reference score bins for the confidence histogram", async () => {
    const samples = await scrape();
    const les = samples
      .filter((s) => s.name === "modelship_prediction_confidence_bucket")
      .map((s) => Number(s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : s.labels.le));
    expect(les).toEqual([...card.reference.scoreHistogram.edges.slice(1), Number.POSITIVE_INFINITY]);
  });

  it("honours x-request-id, logs one line per request and never the body", async () => {
    const marker = `secret-passenger-text-${Date.now()}`;
    const res = await postJson(`${url}/predict`, { text: marker }, { "x-request-id": "trace-abc-123" });
    expect(res.status).toBe(200);
    expect(res.headers["x-request-id"]).toBe("trace-abc-123");
    const minted = await request(`${url}/health`);
    expect(minted.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 200));
    const lines = server.logs.filter((l) => l.reqId === "trace-abc-123");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: "request", route: "/predict", status: "200", method: "POST" });
    expect(JSON.stringify(server.logs)).not.toContain(marker);
  });
});
