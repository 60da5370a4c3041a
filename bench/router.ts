/**
 * bench:router — what the traffic layer costs and how fast rollouts and rollbacks are, in one run on
 * this machine (real HAProxy, real Podman containers, real model):
 *   1. POST /predict direct to the container vs through HAProxy (wrk, same connections and duration):
 *      throughput ratio (goal ≥ 70%) and p99 added (goal ≤ 1 ms);
 *   2. `modelship deploy --fast` of a second version under ~200 req/s: start → 100%;
 *   3. `modelship rollback`: warm (standby flip) and cold (container started first) switch times.
 * Prints a table and a JSON line. Usage: npm run bench:router [-- --duration 10 --connections 32]
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { Ledger } from "../src/ledger/ledger.js";
import { startLoad } from "../src/load/generator.js";
import { freePort } from "../src/rollout/wiring.js";
import { textTable } from "../src/util/progress.js";
import { trainedBundle } from "../test/support/bundle.js";
import { tweetTexts } from "../test/support/data.js";
import { ensureDockerHost, modelImage, testEngine } from "../test/support/images.js";
import { httpLoad } from "./support.js";

const exec = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({
  options: { duration: { type: "string", default: "10" }, connections: { type: "string", default: "32" } },
});
const duration = Number(args.duration);
const connections = Number(args.connections);

const wrk = (url: string, body: string) => httpLoad(url, { body, seconds: duration, connections });

async function cli(argv: string[]): Promise<string> {
  const { stdout } = await exec("node", ["bin/modelship.js", ...argv], { cwd: root, maxBuffer: 1 << 24 });
  return stdout;
}

async function bundleAs(src: string, stamp: string): Promise<string> {
  const card = JSON.parse(await readFile(join(src, "model.json"), "utf8"));
  const version = `${stamp}-${card.model.sha256.slice(0, 8)}`;
  const dir = join(root, "test", ".cache", "acceptance", `${card.name}-${version}`);
  await rm(dir, { recursive: true, force: true });
  await cp(src, dir, { recursive: true });
  await writeFile(join(dir, "model.json"), `${JSON.stringify({ ...card, version }, null, 2)}\n`);
  return dir;
}

ensureDockerHost();
const good = await trainedBundle();
const v1 = await modelImage(await bundleAs(good, "20260101.000001"), { repository: "mstest-acc-v1" });
const v2 = await modelImage(await bundleAs(good, "20260101.000002"), { repository: "mstest-acc-v2" });
const stateDir = await mkdtemp(join(tmpdir(), "msbench-router-state-"));
const common = ["--state-dir", stateDir, "--name-prefix", "mstest-bench-"];
const [edgePort, metricsPort] = [await freePort(), await freePort()];
const edge = `http://127.0.0.1:${edgePort}`;
try {
  await cli([
    "host",
    "init",
    "--state-dir",
    stateDir,
    "--edge-port",
    String(edgePort),
    "--metrics-port",
    String(metricsPort),
  ]);
  await cli(["deploy", "--image", v1.ref, "--fast", ...common]);
  const stable = (await new Ledger(stateDir).read()).versions.find((v) => v.role === "stable")!;
  const direct = `http://127.0.0.1:${stable.container!.hostPort}`;
  const body = JSON.stringify({
    text: "@united my flight was delayed three hours and nobody told us anything",
  });
  const load0 = loadavg();
  await wrk(`${direct}/predict`, body); // warm-up (JIT, connection pools)
  const d = await wrk(`${direct}/predict`, body);
  const h = await wrk(`${edge}/predict`, body);
  const d2 = await wrk(`${direct}/predict`, body); // direct again: how much the machine drifted

  const load = await startLoad({ url: edge, texts: tweetTexts(), rps: 200, connections: 16 });
  const t0 = performance.now();
  await cli(["deploy", "--image", v2.ref, "--fast", ...common]);
  const deployMs = performance.now() - t0;
  const last = (out: string) => JSON.parse(out.trim().split("\n").at(-1)!);
  const warm = last(await cli(["rollback", "--reason", "bench warm", "--json", ...common]));
  const engine = await testEngine();
  const v2entry = (await new Ledger(stateDir).read()).versions.find((v) => v.role === "standby")!;
  await engine.remove(v2entry.container!.id, { force: true });
  const cold = last(
    await cli(["rollback", "--to", v2entry.version, "--reason", "bench cold", "--json", ...common]),
  );
  const users = await load.stop();

  const directRps = (d.rps + d2.rps) / 2;
  const rows = [
    [
      "direct /predict (container)",
      d.rps.toFixed(0),
      d.p50.toFixed(2),
      d.p99.toFixed(2),
      "1.00 (floor)",
      String(d.errors),
    ],
    [
      "through HAProxy (edge)",
      h.rps.toFixed(0),
      h.p50.toFixed(2),
      h.p99.toFixed(2),
      (h.rps / directRps).toFixed(2),
      String(h.errors),
    ],
    [
      "direct again (drift check)",
      d2.rps.toFixed(0),
      d2.p50.toFixed(2),
      d2.p99.toFixed(2),
      (d2.rps / d.rps).toFixed(2),
      String(d2.errors),
    ],
  ];
  console.log(
    `bench:router — ${connections} connections, ${duration}s per run, wrk, 1 server worker, load average ${load0.map((x) => x.toFixed(1)).join(" ")}`,
  );
  console.log(textTable(["run", "req/s", "p50 ms", "p99 ms", "ratio", "errors"], rows));
  const p99Added = h.p99 - (d.p99 + d2.p99) / 2;
  console.log(
    `HAProxy: ${((h.rps / directRps) * 100).toFixed(0)}% of direct throughput (goal ≥ 70%), p99 added ${p99Added.toFixed(2)} ms (goal ≤ 1 ms)`,
  );
  console.log(
    `deploy --fast start → 100%: ${(deployMs / 1000).toFixed(1)} s (3 steps with analysis, under ~200 req/s)`,
  );
  console.log(
    `rollback warm: switch ${Math.round(warm.switchMs)} ms (total ${(warm.totalMs / 1000).toFixed(1)} s); cold: switch ${Math.round(cold.switchMs)} ms, total ${(cold.totalMs / 1000).toFixed(1)} s`,
  );
  console.log(
    `users during deploy + rollbacks: ${users.completed} requests, ${users.non2xx} non-2xx, ${users.errorCount} connection errors`,
  );
  console.log(
    JSON.stringify({
      direct: d,
      haproxy: h,
      directAgain: d2,
      ratio: h.rps / directRps,
      p99AddedMs: p99Added,
      deployMs,
      warm: { switchMs: warm.switchMs, totalMs: warm.totalMs },
      cold: { switchMs: cold.switchMs, totalMs: cold.totalMs },
      users: { completed: users.completed, non2xx: users.non2xx, errors: users.errorCount },
    }),
  );
} finally {
  const engine = await testEngine();
  for (const c of await engine.listContainers({ labels: { "dev.modelship.state-dir": stateDir } }))
    await engine.remove(c.id, { force: true }).catch(() => {});
  const pid = Number(await readFile(join(stateDir, "haproxy", "haproxy.pid"), "utf8").catch(() => ""));
  if (pid) process.kill(pid, "SIGTERM");
  await rm(stateDir, { recursive: true, force: true });
}
