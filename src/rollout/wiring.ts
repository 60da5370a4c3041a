import { createServer } from "node:net";
import type { RouterCounters } from "../analysis/analysis.js";
import { parsePromText } from "../analysis/prom.js";
import { modelCardSchema } from "../bundle/schema.js";
import type { Engine } from "../engine/engine.js";
import { lastErrorLine, serverHardening } from "../image/build.js";
import { MODEL_LABELS } from "../image/labels.js";
import type { ContainerRun } from "../ledger/schema.js";
import type { Router } from "../router/router.js";
import { formatSmokeReport, runSmokeTest, waitForReady } from "../smoke/smoke.js";
import { ExitCode, UserError } from "../util/errors.js";
import type { Candidate, ContainerPort, RolloutDeps, TrafficPort } from "./ports.js";
import { systemClock } from "./ports.js";
import type { RolloutSettings } from "./settings.js";

/** Labels on every serving container we start: how repair finds (and never confuses) ours. */
export const SERVED_LABELS = {
  role: "dev.modelship.role",
  stateDir: "dev.modelship.state-dir",
} as const;

/** A free TCP port on loopback, chosen now so the container keeps it across engine restarts. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function containerName(prefix: string, version: string): string {
  return `${prefix}${version}`.replace(/[^a-zA-Z0-9_.-]/g, "-");
}

/** Starts a serving container exactly as recorded (deploy, rollback, and `host repair` recreating it). */
export function runServing(
  engine: Engine,
  image: string,
  name: string,
  hostPort: number,
  run: ContainerRun,
): Promise<string> {
  return engine.runContainer({
    image,
    name,
    port: run.containerPort,
    hostPort,
    memory: run.memory,
    cpus: run.cpus,
    restart: run.restart,
    stopTimeoutSec: run.stopTimeoutSec,
    ...(run.hardening ? { hardening: run.hardening } : {}),
    labels: run.labels,
    env: run.env,
  });
}

export function engineContainers(engine: Engine, stateDir: string, settings: RolloutSettings): ContainerPort {
  const c = settings.container;
  return {
    async start(candidate: Candidate) {
      const name = containerName(c.namePrefix, candidate.version);
      await engine.remove(name, { force: true });
      const hostPort = await freePort();
      const run: ContainerRun = {
        containerPort: c.port,
        memory: c.memory,
        cpus: c.cpus,
        restart: c.restart,
        hardening: serverHardening(c.workers),
        // The server drains on SIGTERM (readiness false, in-flight finish); give it time before SIGKILL.
        stopTimeoutSec: 15,
        labels: {
          [SERVED_LABELS.role]: "served",
          [SERVED_LABELS.stateDir]: stateDir,
          [MODEL_LABELS.version]: candidate.version,
        },
        env: { MODELSHIP_WORKERS: String(c.workers), ...(candidate.env ?? {}) },
      };
      const id = await runServing(engine, candidate.image.ref, name, hostPort, run);
      return { id, name, hostPort, run };
    },
    async waitReady(container, timeoutMs) {
      return waitForReady(`http://127.0.0.1:${container.hostPort}`, {
        timeoutMs,
        intervalMs: 50,
        isAlive: async () => {
          const state = await engine.inspectContainer(container.id);
          if (state?.running) return null;
          const logs = await engine.logs(container.id, { tail: 30 }).catch(() => "");
          return `container exited with code ${state?.exitCode ?? "?"}: ${lastErrorLine(logs)}`;
        },
      });
    },
    async stopAndRemove(container) {
      await engine.stop(container.id, { timeoutSec: 15 }).catch(() => {});
      await engine.remove(container.id, { force: true });
    },
    async isRunning(container) {
      const state = await engine.inspectContainer(container.id).catch(() => null);
      return Boolean(state?.running);
    },
    async removeImage(ref) {
      await engine.removeImage(ref).catch(() => {});
    },
  };
}

export function routerTraffic(router: Router): TrafficPort {
  return {
    edgeUrl: () => router.edgeUrl(),
    ensureRunning: async () => {
      await router.ensureRunning();
    },
    attach: async (name, hostPort, options) => {
      const backup = options?.backup ?? false;
      await router.upsertServer({
        name,
        address: "127.0.0.1",
        port: hostPort,
        weight: backup ? 100 : 0,
        state: "ready",
        backup,
      });
    },
    waitHealthy: async (name, timeoutMs) => (await router.waitHealthy(name, timeoutMs)).healthy,
    setWeights: async (weights) => {
      await router.setWeights(weights);
    },
    drain: async (name) => {
      await router.drain(name);
    },
    standby: async (name) => {
      const spec = (await router.readDesired()).servers.find((s) => s.name === name);
      if (spec) await router.upsertServer({ ...spec, weight: 100, state: "ready", backup: true });
    },
    activate: async (name) => {
      const spec = (await router.readDesired()).servers.find((s) => s.name === name);
      if (spec?.backup) await router.upsertServer({ ...spec, backup: false });
    },
    waitDrained: (name, timeoutMs) => router.waitDrained(name, timeoutMs),
    detach: async (name) => {
      await router.remove(name);
    },
    servers: async () => (await router.readDesired()).servers.map((s) => s.name),
    serverCounters: async () => {
      const out: Record<string, RouterCounters> = {};
      for (const s of await router.stats()) {
        out[s.name] = {
          responses: Object.values(s.responses).reduce((a, b) => a + b, 0),
          http5xx: s.responses["5xx"],
          // A 500 that HAProxy retried elsewhere shows up only as a retry (wretr) on this server.
          failures: s.connectionErrors + s.responseErrors + s.retries,
          status: s.status,
        };
      }
      return out;
    },
    edgeCounters: () => router.edgeTotals(),
  };
}

export async function scrapeMetrics(hostPort: number): Promise<ReturnType<typeof parsePromText> | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${hostPort}/metrics`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return null;
    return parsePromText(await res.text());
  } catch {
    return null;
  }
}

/** The bundle card baked into a model image (/model/model.json), read from a running container. */
export async function cardFromContainer(engine: Engine, containerId: string) {
  const script = "process.stdout.write(require('fs').readFileSync('/model/model.json','utf8'))";
  const result = await engine.execIn(containerId, ["node", "-e", script]);
  if (result.code !== 0) {
    throw new UserError(`cannot read /model/model.json from the candidate: ${result.stderr.trim()}`, {
      exitCode: ExitCode.failed,
      hint: "deploy images built by `modelship build`",
    });
  }
  const parsed = modelCardSchema.safeParse(JSON.parse(result.stdout));
  if (!parsed.success)
    throw new UserError(`the candidate's model.json is invalid: ${parsed.error.issues[0]?.message}`, {
      exitCode: ExitCode.failed,
    });
  return parsed.data;
}

/** The real host: engine containers, HAProxy, HTTP scrapes, the golden smoke test. */
export function realDeps(
  engine: Engine,
  router: Router,
  stateDir: string,
  settings: RolloutSettings,
): RolloutDeps {
  return {
    containers: engineContainers(engine, stateDir, settings),
    traffic: routerTraffic(router),
    scrapeMetrics,
    clock: systemClock,
    async smoke(container, candidate) {
      const card = candidate.card ?? (await cardFromContainer(engine, container.id));
      candidate.card = card;
      if (candidate.model && card.model.sha256 !== candidate.model.sha256) {
        throw new Error(
          `the image's label says model sha256 ${candidate.model.sha256.slice(0, 12)}…, its model.json says ${card.model.sha256.slice(0, 12)}…`,
        );
      }
      const result = await runSmokeTest({ baseUrl: `http://127.0.0.1:${container.hostPort}`, card });
      if (!result.passed) throw new Error(`golden smoke test failed\n${formatSmokeReport(result)}`);
      return `smoke test: ${result.examples} golden examples match`;
    },
  };
}
