/**
 * What every bench needs, once: HTTP load with wrk (autocannon when wrk is missing), a server started
 * until its "ready" log line, its stop, and the CPU time of a process tree. Benches compare figures
 * measured in the same run (ratios against floors), never against fixed timings.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);
export const root = resolve(import.meta.dirname, "..");

export interface HttpLoad {
  rps: number;
  /** Latency percentiles in ms. */
  p50: number;
  p99: number;
  requests: number;
  /** Non-2xx responses + socket errors (wrk counts an answer later than 2 s as a socket timeout). */
  errors: number;
  non2xx?: number;
  /** wrk's socket-error line, when there was one. */
  detail?: string;
}

export interface HttpLoadOptions {
  /** JSON body to POST; none = GET. */
  body?: string;
  seconds: number;
  connections: number;
}

let wrkAvailable: Promise<boolean> | undefined;
export function hasWrk(): Promise<boolean> {
  wrkAvailable ??= exec("wrk", ["--version"]).then(
    () => true,
    (e: { stdout?: string }) => Boolean(e.stdout?.includes("wrk")),
  );
  return wrkAvailable;
}

/** Load `url` for `seconds` at `connections` (wrk: 2 threads) and return req/s, p50/p99 and errors. */
export async function httpLoad(url: string, o: HttpLoadOptions): Promise<HttpLoad> {
  if (await hasWrk()) return wrk(url, o);
  interface Autocannon {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number;
    non2xx: number;
    timeouts: number;
  }
  // autocannon ships no types; this is the slice of its result we read.
  const { default: autocannon } = (await import("autocannon" as string)) as {
    default: (opts: object) => Promise<Autocannon>;
  };
  const result = await autocannon({
    url,
    connections: o.connections,
    duration: o.seconds,
    ...(o.body === undefined
      ? {}
      : { method: "POST", headers: { "content-type": "application/json" }, body: o.body }),
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
    requests: result.requests.total,
  };
}

async function wrk(url: string, o: HttpLoadOptions): Promise<HttpLoad> {
  const dir = await mkdtemp(join(tmpdir(), "msbench-"));
  try {
    const script = join(dir, "post.lua");
    await writeFile(
      script,
      o.body === undefined
        ? ""
        : `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(o.body)}\n`,
    );
    const { stdout } = await exec(
      "wrk",
      ["-t", "2", "-c", String(o.connections), "-d", `${o.seconds}s`, "--latency", "-s", script, url],
      { maxBuffer: 1 << 20 },
    );
    const ms = (s: string) => {
      const m = /([\d.]+)(us|ms|s)/.exec(s)!;
      return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
    };
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    return {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)![1]),
      p50: ms(/\s50%\s+(\S+)/.exec(stdout)![1]!),
      p99: ms(/\s99%\s+(\S+)/.exec(stdout)![1]!),
      requests: Number(/(\d+) requests in/.exec(stdout)![1]),
      errors: non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
      ...(sockErr ? { detail: sockErr[0] } : {}),
      ...(non2xx ? { non2xx } : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Starts `node <cmd…>` (e.g. dist/serving/main.js) and resolves on its JSON "ready" log line with a port
 * (the primary's, when the line names a role); rejects if it exits first.
 */
export function startServer(
  cmd: string[],
  env: Record<string, string>,
): Promise<{ child: ChildProcess; port: number; readyMs: number }> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, cmd, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((res, rej) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split("\n")) {
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number; role?: string };
          if (j.msg === "ready" && j.port && (j.role === undefined || j.role === "primary")) {
            child.stdout!.removeAllListeners("data");
            child.stdout!.resume();
            res({ child, port: j.port, readyMs: Math.round(performance.now() - spawnedAt) });
          }
        } catch {}
      }
    });
    child.once("exit", (code) => rej(new Error(`${cmd.join(" ")} exited ${code} before ready`)));
  });
}

export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await done;
}

/**
 * CPU seconds (user + system) used so far by a process and its children. On a shared machine
 * wall-clock req/s depends on the neighbours; CPU per request does not, so both are reported.
 */
export async function treeCpuSeconds(pid: number): Promise<number> {
  const { stdout } = await exec("ps", ["-o", "pid=", "--ppid", String(pid)]).catch(() => ({ stdout: "" }));
  const pids = [
    pid,
    ...stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => Number(l.trim())),
  ];
  let ticks = 0;
  for (const p of pids) {
    const stat = await readFile(`/proc/${p}/stat`, "utf8").catch(() => "");
    // Fields after the ")" of the command name: utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / 100;
}
