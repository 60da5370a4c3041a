import type { LedgerData, Operation, VersionEntry } from "../ledger/schema.js";
import type { LiveContainer, LiveServer } from "./ports.js";

/**
 * The repair planner: ledger + what really runs (containers of this state dir, servers behind the edge)
 * → the steps that bring them in line. Pure, like machine.ts, so every fault is a unit test; the
 * executor (reconcile.ts) applies the steps. Used before every deploy/rollback and by `host repair`.
 *
 * Two rules hold for every plan:
 * - a server that is serving is never removed while it is the last healthy one (say what is wrong);
 * - what the ledger does not know but the host runs is adopted when it serves, removed when it does not.
 */

export interface HostView {
  containers: LiveContainer[];
  servers: LiveServer[];
  now: number;
}

export type RepairStep =
  /** The ledger knows nothing live but the edge routes to our containers: rebuild it from them. */
  | { do: "adopt"; entries: VersionEntry[]; note: string }
  /** Cannot tell safely what should serve: change nothing, say why. */
  | { do: "refuse"; reason: string; hint: string }
  /** A canary (or a rollback target) an interrupted operation left: weight 0, drain, out, container removed. */
  | { do: "unwind"; version: string; role: "failed" | "retired"; reason: string }
  | { do: "retire-standby"; version: string; reason: string }
  | { do: "reattach-standby"; version: string; port: number }
  /** A container this state dir started that the ledger does not reference (crash between start and record). */
  | { do: "remove-container"; container: { id: string; name: string }; reason: string }
  | { do: "detach"; name: string; reason: string }
  | { do: "attach-stable"; version: string; port: number }
  /** Router weights follow the ledger: stable 100 (activated), standbys as warm backups. */
  | { do: "route-to-stable"; version: string; standbys: string[] }
  | { do: "warn"; message: string; fix?: string }
  /** What happens to an interrupted operation: resumed past its commit point, or unwound. */
  | { do: "note"; message: string };

export interface PlanOptions {
  /** The operation a crashed process left behind (its recorded phase says resume or unwind). */
  interrupted: Operation | null;
  /** Standby window given to adopted backups. */
  standbyWindowMs: number;
}

const LIVE_ROLES = new Set(["stable", "canary", "standby"]);

/**
 * Weights the router must carry for the ledger: the one place router weights come from. Every weight
 * change is a ledger write first; the router is then set from this (so the two cannot disagree for
 * longer than one call, and repair re-derives the router from the ledger). Standbys (backups with
 * their own weight in the router) are included only when asked: at the switch, to take them to 0.
 */
export function weightsFromLedger(
  l: LedgerData,
  options: { standbys?: boolean } = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of l.versions)
    if (v.role === "stable" || v.role === "canary" || (options.standbys && v.role === "standby"))
      out[v.version] = v.weight;
  return out;
}

/** Whether the interrupted operation had passed its commit point (the target was already stable). */
export function pastCommit(op: Operation | null, ledger: LedgerData): boolean {
  const p = op?.phase;
  if (!p || !(p.name === "switching" || p.name === "draining" || p.name === "retiring")) return false;
  const stable = ledger.versions.find((v) => v.role === "stable");
  return p.name !== "switching" || stable?.version === p.version;
}

export function planRepair(ledger: LedgerData, host: HostView, options: PlanOptions): RepairStep[] {
  const live = ledger.versions.filter((v) => LIVE_ROLES.has(v.role));
  if (live.length === 0) {
    const adoption = planAdoption(host, options);
    if (adoption.length === 0 || adoption[0]!.do !== "adopt") return adoption;
    const adopted = (adoption[0] as Extract<RepairStep, { do: "adopt" }>).entries;
    return [
      adoption[0]!,
      ...planKnown({ ...ledger, versions: [...ledger.versions, ...adopted] }, host, options),
    ];
  }
  return planKnown(ledger, host, options);
}

/** Nothing live in the ledger (lost, emptied, fresh): rebuild from what the edge routes to, or refuse. */
function planAdoption(host: HostView, options: PlanOptions): RepairStep[] {
  const match = (s: LiveServer) =>
    host.containers.find((c) => c.running && c.hostPort === s.port && c.model?.version === s.name);
  const routes = host.servers.filter((s) => s.state !== "maint" && (s.weight > 0 || s.backup));
  const serving = routes.filter((s) => match(s));
  const unknownUp = routes.filter((s) => !match(s) && s.up !== false);
  if (unknownUp.length > 0) {
    return [
      {
        do: "refuse",
        reason: `the ledger lists nothing live, and the edge routes to ${unknownUp.map((s) => `${s.name} (port ${s.port})`).join(", ")} with no running container of this state dir behind it to rebuild the ledger from; nothing was changed`,
        hint: "restore ledger.json from a backup, or check `docker ps` and HAProxy by hand",
      },
    ];
  }
  if (serving.length === 0) {
    // Nothing healthy is routed: servers that are down and containers of ours serve nobody.
    return [
      ...host.servers.map((s) => ({
        do: "detach" as const,
        name: s.name,
        reason: "not in the ledger and not serving",
      })),
      ...host.containers.map((c) => ({
        do: "remove-container" as const,
        container: { id: c.id, name: c.name },
        reason: "started by this state dir, unknown to the ledger and not behind the edge",
      })),
    ];
  }
  const regular = serving.filter((s) => !s.backup).sort((a, b) => b.weight - a.weight);
  const stableServer = regular.find((s) => s.up !== false) ?? regular[0] ?? serving[0]!;
  const at = new Date(host.now).toISOString();
  const standbyUntil = new Date(host.now + options.standbyWindowMs).toISOString();
  const entries: VersionEntry[] = serving.map((s) => {
    const c = match(s)!;
    const role = s === stableServer ? "stable" : s.backup ? "standby" : "canary";
    return {
      version: s.name,
      image: { ref: c.image, digest: null },
      model: c.model,
      container: { id: c.id, name: c.name, hostPort: s.port },
      role,
      weight: role === "standby" ? 0 : Math.round(s.weight),
      createdAt: at,
      updatedAt: at,
      ...(role === "stable" ? { promotedAt: at } : {}),
      ...(role === "standby" ? { standbyUntil } : {}),
      analysis: [],
    };
  });
  return [
    {
      do: "adopt",
      entries,
      note: `rebuilt the ledger from the running containers: ${entries.map((e) => `${e.version} as ${e.role}`).join(", ")}`,
    },
  ];
}

function planKnown(ledger: LedgerData, host: HostView, options: PlanOptions): RepairStep[] {
  const steps: RepairStep[] = [];
  const server = (name: string) => host.servers.find((s) => s.name === name);
  const container = (id: string | undefined) =>
    id ? host.containers.find((c) => c.id.startsWith(id) || id.startsWith(c.id)) : undefined;
  const running = (v: VersionEntry) => Boolean(v.container && container(v.container.id)?.running);
  /** Healthy and able to take requests: HAProxy says UP (or cannot say) and the container runs. */
  const healthy = (name: string) => {
    const s = server(name);
    const v = ledger.versions.find((x) => x.version === name);
    const c = v?.container ? container(v.container.id) : host.containers.find((x) => x.name === name);
    return Boolean(s && s.state !== "maint" && s.up !== false && (c ? c.running : s.up === true));
  };
  const stable = ledger.versions.find((v) => v.role === "stable");
  const stableOk = stable ? running(stable) && server(stable.version)?.up !== false : false;
  const removing = new Set<string>();
  /** Taking `name` out leaves at least one healthy server (or it was not serving anyway). */
  const safeToRemove = (name: string) =>
    !healthy(name) || host.servers.some((s) => s.name !== name && !removing.has(s.name) && healthy(s.name));
  const why = describeInterruption(options.interrupted);
  const op = options.interrupted;
  if (op) {
    steps.push({
      do: "note",
      message: pastCommit(op, ledger)
        ? `the interrupted ${op.kind}${op.target ? ` of ${op.target}` : ""} had already switched traffic (phase "${op.step}"): finishing it`
        : `the interrupted ${op.kind}${op.target ? ` of ${op.target}` : ""} stopped at "${op.step}", before switching traffic: unwinding it`,
    });
  }

  // 1. Unfinished canaries and half-started rollback targets.
  for (const v of ledger.versions.filter((x) => x.role === "canary")) {
    if (!stableOk && !safeToRemove(v.version)) {
      steps.push({
        do: "warn",
        message: `the unfinished canary ${v.version} is the last healthy server (stable ${stable?.version ?? "none"} is down); kept serving`,
        fix: `modelship rollback --to ${v.version} --reason "stable down"   # or fix the stable, then \`modelship host repair\``,
      });
      continue;
    }
    removing.add(v.version);
    steps.push({
      do: "unwind",
      version: v.version,
      role: "failed",
      reason: why ?? "left over as canary by an earlier operation",
    });
  }
  for (const v of ledger.versions.filter(
    (x) => (x.role === "retired" || x.role === "failed") && x.container,
  )) {
    if (!safeToRemove(v.version)) {
      steps.push({
        do: "warn",
        message: `${v.version} (${v.role}) still runs and is the last healthy server; kept`,
        fix: `modelship rollback --to ${v.version} --reason "only healthy version"`,
      });
      continue;
    }
    removing.add(v.version);
    steps.push({
      do: "unwind",
      version: v.version,
      role: v.role as "failed" | "retired",
      reason: why
        ? `started by an operation that did not finish (${why})`
        : `a ${v.role} version still had a container`,
    });
  }

  // 2. Containers of this state dir the ledger does not reference (a crash between start and record).
  // Matched by id (short or full form) or name: a container the ledger records is never an orphan.
  const recorded = ledger.versions.flatMap((v) => (v.container ? [v.container] : []));
  const isRecorded = (c: LiveContainer) =>
    recorded.some((r) => r.name === c.name || c.id.startsWith(r.id) || r.id.startsWith(c.id));
  for (const c of host.containers) {
    if (isRecorded(c)) continue;
    const routed = host.servers.find((s) => s.name === c.model?.version && s.port === c.hostPort);
    if (routed && !safeToRemove(routed.name)) {
      steps.push({
        do: "warn",
        message: `container ${c.name} is unknown to the ledger but is the last healthy server behind the edge; kept`,
      });
      continue;
    }
    if (routed) removing.add(routed.name);
    steps.push({
      do: "remove-container",
      container: { id: c.id, name: c.name },
      reason: why ? `orphan of an interrupted operation (${why})` : "unknown to the ledger",
    });
  }

  // 3. Standbys: retire dead or expired ones (never the last healthy server), re-attach detached ones.
  const keptStandbys: string[] = [];
  for (const v of ledger.versions.filter((x) => x.role === "standby")) {
    const alive = running(v);
    const expired = v.standbyUntil !== undefined && Date.parse(v.standbyUntil) <= host.now;
    if (!alive && !safeToRemove(v.version)) {
      // The engine does not list it as running (an engine that is restarting can answer with an empty
      // list), yet HAProxy gets answers from it and nothing else serves: never take it out.
      keptStandbys.push(v.version);
      steps.push({
        do: "warn",
        message: `standby ${v.version} is not running as far as the engine says, but HAProxy still gets answers from it and it is the last healthy server; kept`,
      });
    } else if (!alive) {
      removing.add(v.version);
      steps.push({
        do: "retire-standby",
        version: v.version,
        reason: "its container is gone; a rollback to it starts a new one",
      });
    } else if (expired && !stableOk) {
      keptStandbys.push(v.version);
      steps.push({
        do: "warn",
        message: `stable ${stable?.version ?? "(none)"} is down, so standby ${v.version} is kept past its window (${v.standbyUntil}): it is the last healthy server`,
        fix: `modelship rollback --to ${v.version} --reason "stable down"`,
      });
    } else if (expired) {
      removing.add(v.version);
      steps.push({
        do: "retire-standby",
        version: v.version,
        reason: `its standby window ended ${v.standbyUntil}`,
      });
    } else {
      keptStandbys.push(v.version);
      const port = v.container!.hostPort;
      if (!server(v.version)) steps.push({ do: "reattach-standby", version: v.version, port });
    }
  }

  // One warm standby (the newest); a crash while retiring can leave two. Only while the stable is fine.
  if (stableOk && keptStandbys.length > 1) {
    const newest = ledger.versions
      .filter((v) => keptStandbys.includes(v.version))
      .sort((a, b) => (b.standbyUntil ?? "").localeCompare(a.standbyUntil ?? ""))[0]!.version;
    for (const name of keptStandbys.filter((n) => n !== newest)) {
      removing.add(name);
      steps.push({
        do: "retire-standby",
        version: name,
        reason: `only one warm standby is kept (${newest})`,
      });
    }
    keptStandbys.splice(0, keptStandbys.length, newest);
  }

  // 4. Servers the ledger does not keep (stable/standby): out, unless it would leave nobody serving.
  const keep = new Set([...(stable ? [stable.version] : []), ...keptStandbys]);
  for (const s of host.servers) {
    if (keep.has(s.name) || removing.has(s.name)) continue;
    if (!safeToRemove(s.name)) {
      steps.push({
        do: "warn",
        message: `server ${s.name} is not in the ledger as stable or standby but is the last healthy server; kept`,
      });
      continue;
    }
    removing.add(s.name);
    steps.push({ do: "detach", name: s.name, reason: "not in the ledger as stable or standby" });
  }

  // 5. The stable version behind the edge with all regular traffic.
  if (stable?.container) {
    if (!server(stable.version))
      steps.push({ do: "attach-stable", version: stable.version, port: stable.container.hostPort });
    steps.push({ do: "route-to-stable", version: stable.version, standbys: keptStandbys });
    if (!stableOk) {
      steps.push({
        do: "warn",
        message: `stable ${stable.version} is DOWN (${running(stable) ? "HAProxy's health check fails" : "its container is not running"})`,
        fix:
          keptStandbys.length > 0
            ? `modelship rollback --to ${keptStandbys[0]} --reason "stable down"`
            : `docker logs ${stable.container.name}   # then \`modelship deploy\` a working version`,
      });
    }
  }
  return steps;
}

function describeInterruption(op: Operation | null): string | undefined {
  if (!op) return undefined;
  return `interrupted: the ${op.kind} (pid ${op.pid}) stopped at "${op.step}"`;
}

/** One sentence per step, for the terminal and the ledger's history. */
export function describeStep(step: RepairStep): string {
  switch (step.do) {
    case "adopt":
      return step.note;
    case "refuse":
      return `refused: ${step.reason}`;
    case "unwind":
      return step.role === "failed"
        ? `removed the unfinished canary ${step.version} (${step.reason})`
        : `removed the container of ${step.version} (${step.reason})`;
    case "retire-standby":
      return `retired standby ${step.version} (${step.reason})`;
    case "reattach-standby":
      return `re-attached standby ${step.version} to the router as a warm backup`;
    case "remove-container":
      return `removed container ${step.container.name} (${step.reason})`;
    case "detach":
      return `removed server ${step.name} from the router (${step.reason})`;
    case "attach-stable":
      return `re-attached stable ${step.version} to the router`;
    case "route-to-stable":
      return `gave stable ${step.version} all traffic`;
    case "note":
      return step.message;
    case "warn":
      return `WARNING: ${step.message}${step.fix ? ` — fix: ${step.fix}` : ""}`;
  }
}
