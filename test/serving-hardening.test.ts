import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveSettings } from "../serving/settings.js";
import { trainedBundle } from "./support/bundle.js";
import { postJson, type RunningServer, request, startServer } from "./support/serving.js";

/**
 * The direct container port's slow-client limits (issue 10 item 11), with a real slow client: a raw
 * TCP socket that trickles a request and records what the server answers and when it hangs up.
 * Node checks its header/request timeouts on a timer (30 s by default), which made a 10 s header
 * limit close after ~30 s and a 30 s request limit after ~51 s; the server now checks every 250 ms.
 * The upper bounds below leave ~1.5 s for a loaded machine and still fail the old behaviour.
 */

interface SlowResult {
  /** Seconds from connect until the server closed the connection. */
  closedAfterS: number;
  answer: string;
}

/** Sends `first` at once, then one byte of `drip` every `everyMs` until the server closes. */
function slowClient(port: number, first: string, drip: string, everyMs: number, giveUpMs: number) {
  return new Promise<SlowResult>((resolve, reject) => {
    const started = performance.now();
    const socket: Socket = connect(port, "127.0.0.1");
    let answer = "";
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept a slow client for more than ${giveUpMs} ms`));
    }, giveUpMs);
    socket.on("connect", () => {
      socket.write(first);
      timer = setInterval(() => {
        if (socket.writable) socket.write(drip[sent++ % drip.length]!);
      }, everyMs);
    });
    socket.on("data", (d: Buffer) => {
      answer += d.toString();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve({ closedAfterS: (performance.now() - started) / 1000, answer });
    });
  });
}

/** A body of `bytes` with the given raw bytes in the middle of a JSON string. */
function jsonWithBytes(raw: number[]): Buffer {
  return Buffer.concat([Buffer.from('{"text": "good '), Buffer.from(raw), Buffer.from(' day"}')]);
}

describe("slow clients on the server port: the configured limits are the real ones", () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer(await trainedBundle(), {
      MODELSHIP_HEADERS_TIMEOUT_MS: "2000",
      MODELSHIP_REQUEST_TIMEOUT_MS: "4000",
      MODELSHIP_ACCESS_LOG: "0",
    });
  });
  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
  });

  it("headers trickled one byte every 200 ms: 408 JSON and closed at the 2 s header limit", async () => {
    const r = await slowClient(
      server.port,
      "POST /predict HTTP/1.1\r\nHost: x\r\n",
      "X-Slow: aaaaaaaa\r\n",
      200,
      20_000,
    );
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.answer).toContain('{"error":"request not received in time"}');
    expect(r.closedAfterS).toBeGreaterThanOrEqual(1.9);
    expect(r.closedAfterS).toBeLessThan(3.5);
  });

  it("a body trickled one byte every 200 ms: 408 JSON and closed at the 4 s request limit", async () => {
    const head =
      "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    const r = await slowClient(server.port, head, '{"text": "slow"', 200, 20_000);
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.answer).toContain('{"error":"request not received in time"}');
    expect(r.closedAfterS).toBeGreaterThanOrEqual(3.9);
    expect(r.closedAfterS).toBeLessThan(5.5);
  });

  it("an idle keep-alive connection outlives the header limit and still gets answers", async () => {
    const socket = connect(server.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    let received = "";
    socket.on("data", (d: Buffer) => {
      received += d.toString();
    });
    const ask = () => socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    ask();
    await new Promise((r) => setTimeout(r, 3500)); // idle longer than the 2 s header limit
    expect(socket.destroyed).toBe(false);
    ask();
    await new Promise((r) => setTimeout(r, 300));
    expect(received.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    socket.destroy();
  });
});

// The defaults are schema facts; the timer behaviour behind them is proven above with 2 s / 4 s limits
// (Node's own 30 s check interval would fail those bounds), so no 30 s drill is needed for the defaults.
describe("server defaults: 10 s for headers, 30 s for the whole request", () => {
  it("an unconfigured server resolves a 10 s header limit and a 30 s request limit", () => {
    const s = resolveSettings({ modelDir: "/model" }, {});
    expect({ headers: s.headersTimeoutMs, request: s.requestTimeoutMs }).toEqual({
      headers: 10_000,
      request: 30_000,
    });
    const env = { MODELSHIP_HEADERS_TIMEOUT_MS: "2000", MODELSHIP_REQUEST_TIMEOUT_MS: "4000" };
    expect(resolveSettings({ modelDir: "/model" }, env)).toMatchObject({
      headersTimeoutMs: 2000,
      requestTimeoutMs: 4000,
    });
  });
});

describe("request bodies must be UTF-8; access log sampling", () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer(await trainedBundle(), { MODELSHIP_ACCESS_LOG_SAMPLE: "0.1" });
  });
  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
  });

  const invalid: [string, number[]][] = [
    ["a lone continuation byte", [0x80]],
    ["a truncated two-byte sequence", [0xc3]],
    ["an overlong encoding of '/'", [0xc0, 0xaf]],
    ["a UTF-16 surrogate encoded as UTF-8", [0xed, 0xa0, 0x80]],
    ["Latin-1 'é'", [0xe9]],
  ];
  for (const [what, bytes] of invalid) {
    it(`${what} → 400 with one line of JSON, on /predict and on OIP infer`, async () => {
      for (const path of ["/predict", "/v2/models/any/infer"]) {
        const res = await request(`${server.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: jsonWithBytes(bytes),
        });
        expect(res.status, res.text).toBe(400);
        expect(res.headers["content-type"]).toMatch(/^application\/json/);
        expect(res.json()).toEqual({ error: "request body is not valid UTF-8" });
      }
    });
  }

  it("valid multi-byte UTF-8 (é, emoji) and a BOM-free body still answer 200", async () => {
    const res = await request(`${server.url}/predict`, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: jsonWithBytes([...Buffer.from("é 😀")]),
    });
    expect(res.status, res.text).toBe(200);
    expect((res.json() as { text: string }).text).toBe("good é 😀 day");
    expect((await postJson(`${server.url}/predict`, '{"text": "still fine"}')).status).toBe(200);
  });

  it("MODELSHIP_ACCESS_LOG_SAMPLE=0.1 logs about one request in ten", async () => {
    const before = server.logs.filter((l) => l.msg === "request").length;
    for (let i = 0; i < 400; i++) await request(`${server.url}/health`);
    await new Promise((r) => setTimeout(r, 300)); // the async log destination flushes
    const lines = server.logs.filter((l) => l.msg === "request").length - before;
    // Binomial(400, 0.1): mean 40, sd 6; [12, 80] fails by chance less than once in 10^6 runs.
    expect(lines).toBeGreaterThanOrEqual(12);
    expect(lines).toBeLessThanOrEqual(80);
  });
});
