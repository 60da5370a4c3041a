import { type ChildProcess, spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { repoRoot } from "./data.js";

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface RunningServer {
  url: string;
  port: number;
  child: ChildProcess;
  /** Every JSON log line so far (stdout). */
  logs: LogLine[];
  stderr: () => string;
  /** Resolves with the exit code once the primary has exited. */
  exited: Promise<number | null>;
  stop: () => Promise<number | null>;
}

/**
 * Starts the real server (`node dist/serving/main.js`, configured by env like the image) on a free
 * port and waits for its "ready" log line. Rejects with the server's own output if it exits first.
 */
export function startServer(
  modelDir: string,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<RunningServer> {
  const child = spawn(process.execPath, [join(repoRoot, "dist/serving/main.js")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      MODELSHIP_MODEL_DIR: modelDir,
      PORT: "0",
      HOST: "127.0.0.1",
      MODELSHIP_WORKERS: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  let err = "";
  let buffered = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise<RunningServer>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server not ready within ${timeoutMs} ms\n${err}`));
    }, timeoutMs);
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          parsed = { level: "raw", msg: line };
        }
        logs.push(parsed);
        if (parsed.msg === "ready" && parsed.role === "primary") {
          clearTimeout(timer);
          const port = parsed.port as number;
          resolve({
            url: `http://127.0.0.1:${port}`,
            port,
            child,
            logs,
            stderr: () => err,
            exited,
            stop: async () => {
              if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
              return exited;
            },
          });
        }
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`server exited with ${code} before ready\n${err}`), { code, logs }));
    });
  });
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => unknown;
}

/** One HTTP request on a fresh connection (so the cluster spreads them over workers). */
export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: opts.method ?? "GET", headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return request(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
