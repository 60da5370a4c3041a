import { createServer } from "node:net";
import type { RouterCounters } from "../analysis/analysis.js";
import { parsePromText } from "../analysis/prom.js";
import { modelCardSchema, versionSchema } from "../contracts/card.js";
import type { Engine } from "../engine/engine.js";
import { lastErrorLine, serverHardening } from "../image/build.js";
import { MODEL_LABELS, readModelLabels } from "../image/labels.js";
import { Ledger } from "../ledger/ledger.js";
import type { ContainerRun } from "../ledger/schema.js";
import type { Router } from "../router/router.js";
import { formatSmokeReport, runSmokeTest, waitForReady } from "../smoke/smoke.js";
import { ExitCode, UserError } from "../util/errors.js";
import { sha256 } from "../util/fs.js";
import type { Candidate, ContainerPort, LiveContainer, RolloutDeps, TrafficPort } from "./ports.js";
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

/**
 * `<prefix><version>-<8 hex of the state dir>`: two state dirs on one host (same prefix, same version)
 * never share a container name, so one never replaces the other's container.
 */
export function containerName(prefix: string, version: string, stateDir: string): string {
  return `${prefix}${version}-${sha256(stateDir).slice(0, 8)}`.replace(/[^a-zA-Z0-9_.-]/g, "-");
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
  const nameFor = (version: string) => containerName(c.namePrefix, version, stateDir);
  return {
    nameFor,
    async start(candidate: Candidate) {
      const name = nameFor(candidate.version);
      const existing = await engine.inspectContainer(name);
      if (existing) {
        // Only ever replace a container this state dir started (a stale one of an earlier attempt).
        if (existing.labels[SERVED_LABELS.stateDir] !== stateDir)
          throw new UserError(
            `a container named ${name} exists and does not belong to state dir ${stateDir}; not touching it`,
            {
              exitCode: ExitCode.environment,
              hint: "pass another --name-prefix, or remove that container yourself",
            },
          );
        await engine.remove(existing.id, { force: true });
      }
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
          ...(candidate.model
            ? { [MODEL_LABELS.name]: candidate.model.name, [MODEL_LABELS.sha256]: candidate.model.sha256 }
            : {}),
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
    async list() {
      const out: LiveContainer[] = [];
      for (const summary of await engine.listContainers({ labels: { [SERVED_LABELS.stateDir]: stateDir } })) {
        const state = await engine.inspectContainer(summary.id).catch(() => null);
        if (!state || state.labels[SERVED_LABELS.stateDir] !== stateDir) continue;
        const port = state.ports[`${c.port}/tcp`]?.[0]?.hostPort ?? null;
        let model: LiveContainer["model"] = null;
        const labels = { ...state.labels };
        // Containers started before the name/sha256 labels: the version label alone still identifies them.
        const v = labels[MODEL_LABELS.version];
        try {
          model = readModelLabels(labels, `container ${state.name}`);
        } catch {
          model =
            v && versionSchema.safeParse(v).success && !labels[MODEL_LABELS.sha256]
              ? { name: "", version: v, sha256: "" }
              : null;
        }
        out.push({
          id: state.id,
          name: state.name,
          running: state.running,
          hostPort: port,
          image: state.image,
          model,
        });
      }
      return out;
    },
    async modelInfo(container) {
      try {
        const res = await fetch(`http://127.0.0.1:${container.hostPort}/model-info`, {
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) return null;
        const body = (await res.json()) as Record<string, unknown>;
        const str = (x: unknown) => (typeof x === "string" ? x : undefined);
        return { name: str(body.name), version: str(body.version), sha256: str(body.sha256) };
      } catch {
        return null;
      }
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
      // Never an image another state dir's ledger references (or one we cannot read to be sure).
      const elsewhere = await referencedElsewhere(engine, stateDir);
      if (elsewhere === "unknown" || elsewhere.has(ref)) return;
      await engine.removeImage(ref).catch(() => {});
    },
  };
}

/**
 * Images the ledgers of other state dirs on this host reference (found through the state-dir label of
 * their containers). "unknown" when one of them cannot be read: nothing is pruned then.
 */
async function referencedElsewhere(engine: Engine, stateDir: string): Promise<Set<string> | "unknown"> {
  const refs = new Set<string>();
  const dirs = new Set<string>();
  for (const c of await engine.listContainers({ labels: { [SERVED_LABELS.role]: "served" } }))
    if (c.labels[SERVED_LABELS.stateDir] && c.labels[SERVED_LABELS.stateDir] !== stateDir)
      dirs.add(c.labels[SERVED_LABELS.stateDir]!);
  for (const dir of dirs) {
    try {
      for (const v of (await new Ledger(dir).read()).versions) refs.add(v.image.ref);
    } catch {
      return "unknown";
    }
  }
  return refs;
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
    setShadow: (target) => router.setShadow(target),
    shadowPairsUrl: (since) => router.shadowPairsUrl(since),
    shadowRunning: async () => (await router.readDesired()).shadow !== undefined,
    view: async () => {
      const desired = (await router.readDesired()).servers;
      const stats = (await router.answers()) ? await router.stats().catch(() => null) : null;
      return desired.map((d) => {
        const live = stats?.find((s) => s.name === d.name);
        return {
          name: d.name,
          port: d.port,
          weight: d.weight,
          backup: d.backup,
          state: d.state,
          up: stats === null ? null : Boolean(live?.up),
        };
      });
    },
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
