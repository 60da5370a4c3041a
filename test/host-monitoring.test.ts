import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { stopMonitoring } from "../src/monitoring/index.js";
import { Router } from "../src/router/index.js";
import { killDaemonsOf } from "./support/leftovers.js";

const exec = promisify(execFile);
const env = { ...process.env, DOCKER_HOST: process.env.DOCKER_HOST ?? "unix:///run/modelship/podman.sock" };

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("modelship host init --monitoring", () => {
  let root: string | undefined;
  let stateDir = "";

  afterAll(async () => {
    if (!root) return;
    await stopMonitoring(stateDir).catch(() => false);
    const live = await Router.open(stateDir)
      .then((r) => r.running())
      .catch(() => undefined);
    if (live) process.kill(live.pid, "SIGKILL");
    await killDaemonsOf(root); // reload leftovers, a Prometheus whose pidfile went missing
    await rm(root, { recursive: true, force: true });
  });

  it("starts Prometheus next to HAProxy and scrapes the edge's exporter", async () => {
    root = await mkdtemp(join(tmpdir(), "mstest-hostmon-"));
    stateDir = join(root, "state");
    const [edge, metrics, prom] = [await freePort(), await freePort(), await freePort()];
    const { stdout } = await exec(
      "node",
      [
        "bin/modelship.js",
        "host",
        "init",
        "--monitoring",
        "--json",
        ...["--state-dir", stateDir, "--edge-port", String(edge), "--metrics-port", String(metrics)],
        ...["--monitoring-port", String(prom)],
      ],
      { env },
    );
    const result = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; monitoring?: { url: string; supervisor: string } })
      .find((e) => e.type === "result");
    expect(result?.monitoring?.url).toBe(`http://127.0.0.1:${prom}`);

    // Prometheus must come up and find the HAProxy exporter as a healthy target.
    let health: string | undefined;
    for (let i = 0; i < 60 && health !== "up"; i++) {
      const res = await fetch(`http://127.0.0.1:${prom}/api/v1/targets`).catch(() => undefined);
      if (res?.ok) {
        const body = (await res.json()) as {
          data: { activeTargets: { labels: { job: string }; health: string }[] };
        };
        health = body.data.activeTargets.find((t) => t.labels.job === "haproxy")?.health;
      }
      if (health !== "up") await new Promise((r) => setTimeout(r, 500));
    }
    expect(health).toBe("up");
  });
});
