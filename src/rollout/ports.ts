import type { RouterCounters } from "../analysis/analysis.js";
import type { Sample } from "../analysis/prom.js";
import type { ModelCard } from "../contracts/card.js";
import type { ModelIdentity } from "../image/labels.js";
import type { ContainerRun } from "../ledger/schema.js";
import type { ShadowTargetInput } from "../router/schema.js";

/**
 * What a rollout needs from the outside world. The real implementations (wiring.ts) drive the
 * container engine and HAProxy; unit tests pass in-memory ones and a manual clock, so the state machine
 * is tested without sleeps.
 */

export interface Candidate {
  version: string;
  image: { ref: string; digest: string | null; builtHere?: boolean };
  model: ModelIdentity | null;
  /** The bundle card (golden examples for the smoke test, reference for analysis); null if unknown. */
  card: ModelCard | null;
  /** Extra container environment (e.g. MODELSHIP_CHAOS_ERROR_RATE for drills). */
  env?: Record<string, string>;
}

export interface RunningContainer {
  id: string;
  name: string;
  hostPort: number;
  /** How it was started (recorded in the ledger so `host repair` can recreate it). */
  run?: ContainerRun;
}

/** A serving container of THIS state dir (found by its state-dir label), as the engine sees it now. */
export interface LiveContainer {
  id: string;
  name: string;
  running: boolean;
  hostPort: number | null;
  image: string;
  /** The model its labels name (checked against the label patterns); null when they do not. */
  model: ModelIdentity | null;
}

/** A server behind the edge: the router's desired state joined with HAProxy's live view. */
export interface LiveServer {
  name: string;
  port: number;
  /** Percent of traffic in the desired state. */
  weight: number;
  backup: boolean;
  state: "ready" | "drain" | "maint";
  /** HAProxy's health check passes; null when HAProxy does not answer. */
  up: boolean | null;
}

export interface ContainerPort {
  /** The container name a version gets in this state dir (recorded before it is started). */
  nameFor(version: string): string;
  /** Creates and starts the serving container (limits, restart policy, published port). */
  start(candidate: Candidate): Promise<RunningContainer>;
  /** Every container this state dir started (running or not). */
  list(): Promise<LiveContainer[]>;
  /** What the container says it serves (`/model-info`); null when it does not answer. */
  modelInfo(container: RunningContainer): Promise<Partial<ModelIdentity> | null>;
  /** Resolves with ms until ready; rejects with the reason when the timeout passes or it dies. */
  waitReady(container: RunningContainer, timeoutMs: number): Promise<number>;
  /** Graceful stop (SIGTERM, server drains) then remove. Absent is fine. */
  stopAndRemove(container: { id: string; name: string }): Promise<void>;
  isRunning(container: { id: string; name: string }): Promise<boolean>;
  /** Best effort: an image still in use or already gone is not an error. */
  removeImage(ref: string): Promise<void>;
}

export interface TrafficPort {
  edgeUrl(): string;
  ensureRunning(): Promise<void>;
  /** Adds the server at weight 0 (health-checked, no traffic yet), or as a backup (see `standby`). */
  attach(name: string, hostPort: number, options?: { backup?: boolean }): Promise<void>;
  /** Waits for HAProxy's health check to mark the server UP. */
  waitHealthy(name: string, timeoutMs: number): Promise<boolean>;
  /** Traffic shares in percent, applied together. */
  setWeights(weights: Record<string, number>): Promise<void>;
  drain(name: string): Promise<void>;
  /**
   * Keeps `name` warm as HAProxy `backup`: no traffic while a regular server is up, all of it while
   * none is (a crashed stable container costs no request while the engine restarts it).
   */
  standby(name: string): Promise<void>;
  /** Makes a backup server a regular one again (rollback target). */
  activate(name: string): Promise<void>;
  waitDrained(
    name: string,
    timeoutMs: number,
  ): Promise<{ drained: boolean; sessions: number; waitedMs: number }>;
  detach(name: string): Promise<void>;
  /** Names of the servers behind the edge now. */
  servers(): Promise<string[]>;
  /** Every server with its desired weight/backup/state and whether HAProxy sees it UP. */
  view(): Promise<LiveServer[]>;
  serverCounters(): Promise<Record<string, RouterCounters>>;
  /** What clients of the edge saw: requests answered and failures (5xx the edge returned). */
  edgeCounters(): Promise<{ requests: number; failed: number }>;
  /** Starts (a target) or stops (null) the edge's shadow mirror; the Router's own method. */
  setShadow(target: ShadowTargetInput | null): Promise<void>;
  /** Where the mirror's recorded pairs are read (see shadow/collect.ts). */
  shadowPairsUrl(since?: number): string;
  /** Whether a shadow mirror is configured (a crashed shadow step leaves one behind). */
  shadowRunning(): Promise<boolean>;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export interface RolloutDeps {
  containers: ContainerPort;
  traffic: TrafficPort;
  /** A server's /metrics, parsed; null when it cannot be scraped. */
  scrapeMetrics(hostPort: number): Promise<Sample[] | null>;
  /** Golden smoke test on the container's own port; resolves with a summary, throws on mismatch. */
  smoke(container: RunningContainer, candidate: Candidate): Promise<string>;
  clock: Clock;
}
