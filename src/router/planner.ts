import { serverKeywords } from "./config.js";
import {
  BACKEND,
  percentToWeight,
  type RouterDesired,
  type RouterSettings,
  type ServerSpec,
} from "./schema.js";

/**
 * The pure half of applying a desired state: given what the live HAProxy has (from `show servers
 * state` + `show stat`) and what we want, the runtime API commands that get there, in a safe order.
 * No I/O here; `Router` executes the plan and handles HAProxy's answers.
 */

/** One server as the live process reports it. */
export interface LiveServer {
  name: string;
  address: string;
  port: number;
  /** HAProxy admin state bits (show servers state srv_admin_state). */
  adminState: number;
  /** Configured weight 0–256 (srv_uweight). */
  userWeight: number;
  /** `backup` flag (show stat bck). */
  backup: boolean;
}

/** A runtime API command and the answer that means success (undefined: an empty answer). */
export interface PlannedCommand {
  command: string;
  ok?: RegExp;
}

export interface RouterPlan {
  /** Adds, address/weight/state changes: servers gaining traffic first, losing traffic last. */
  commands: PlannedCommand[];
  /** Servers to put in maintenance, then delete once their connections are gone (executor retries). */
  leaving: string[];
  /** Something the runtime API cannot change (the backup flag): a seamless reload must follow. */
  reload: boolean;
}

/** admin state bits → our state names (0x01/0x02/0x04/0x20 maint flavours, 0x08/0x10 drain). */
export function adminStateOf(bits: number): ServerSpec["state"] {
  if (bits & 0x27) return "maint";
  if (bits & 0x18) return "drain";
  return "ready";
}

/** The HAProxy weight a spec means (a server not `ready` gets 0). */
export const weightOf = (spec: ServerSpec): number =>
  spec.state === "ready" ? percentToWeight(spec.weight) : 0;

export function planChanges(
  settings: RouterSettings,
  live: LiveServer[],
  desired: RouterDesired,
): RouterPlan {
  const byName = new Map(live.map((s) => [s.name, s]));
  const commands: PlannedCommand[] = [];
  let reload = false;
  // Servers gaining traffic first, losing traffic last: a flip never passes through a moment where
  // no server takes requests.
  const effectiveWeight = (name: string) => {
    const cur = byName.get(name);
    return cur && adminStateOf(cur.adminState) === "ready" ? cur.userWeight : 0;
  };
  const gain = (spec: ServerSpec) => weightOf(spec) - effectiveWeight(spec.name);
  // Stable sort: equal gains keep the desired order, so the plan is deterministic.
  for (const spec of [...desired.servers].sort((a, b) => gain(b) - gain(a))) {
    const ref = `${BACKEND}/${spec.name}`;
    const cur = byName.get(spec.name);
    // The runtime API cannot flip `backup` on a server: the (seamless) reload applies it.
    if (cur && cur.backup !== spec.backup) reload = true;
    if (!cur) {
      // HAProxy 2.6: dynamic servers start in maintenance, ignore default-server, and need their
      // health check enabled explicitly.
      commands.push({
        command: `add server ${ref} ${serverKeywords(settings, spec, false)}`,
        ok: /New server registered/,
      });
      commands.push({ command: `enable health ${ref}` });
    } else if (cur.address !== spec.address || cur.port !== spec.port) {
      commands.push({
        command: `set server ${ref} addr ${spec.address} port ${spec.port}`,
        ok: /changed|no need/i,
      });
    }
    const weight = weightOf(spec);
    if (!cur || cur.userWeight !== weight) commands.push({ command: `set server ${ref} weight ${weight}` });
    if (!cur || adminStateOf(cur.adminState) !== spec.state)
      commands.push({ command: `set server ${ref} state ${spec.state}` });
  }
  const wanted = new Set(desired.servers.map((s) => s.name));
  const leaving = live.map((s) => s.name).filter((name) => !wanted.has(name));
  // Maintenance stops new requests but lets in-flight ones finish; deletion waits for them.
  for (const name of leaving) commands.push({ command: `set server ${BACKEND}/${name} state maint` });
  return { commands, leaving, reload };
}

/** Differences between live and desired that `host check` reports (empty = in sync). */
export function driftProblems(live: LiveServer[], desired: RouterDesired): string[] {
  const problems: string[] = [];
  for (const spec of desired.servers) {
    const s = live.find((x) => x.name === spec.name);
    const want = weightOf(spec);
    if (!s) problems.push(`${spec.name} missing`);
    else if (s.userWeight !== want) problems.push(`${spec.name} weight ${s.userWeight}, want ${want}`);
  }
  for (const s of live)
    if (!desired.servers.some((d) => d.name === s.name)) problems.push(`${s.name} not desired`);
  return problems;
}

/** Runtime API commands that make the live pin map hold `wanted` (see config.ts `pinEntries`). */
export interface PinMapPlan {
  /** Entries leaving (and changed lists): sent before servers are put in maintenance and deleted. */
  before: PlannedCommand[];
  /** Entries arriving: sent after their servers were added. */
  after: PlannedCommand[];
}

/** One `key value` entry of a pin map, in the order HAProxy (or the file) lists them. */
export type PinMapEntry = [key: string, value: string];

export function planPinMap(
  file: string,
  live: Map<string, string> | PinMapEntry[],
  wanted: Map<string, string>,
): PinMapPlan {
  const before: PlannedCommand[] = [];
  const after: PlannedCommand[] = [];
  const entries = live instanceof Map ? [...live] : live;
  const count = new Map<string, number>();
  for (const [key] of entries) count.set(key, (count.get(key) ?? 0) + 1);
  const current = new Map(entries);
  for (const key of count.keys()) if (!wanted.has(key)) before.push({ command: `del map ${file} ${key}` });
  for (const [key, value] of wanted) {
    const n = count.get(key) ?? 0;
    if (n === 0) after.push({ command: `add map ${file} ${key} ${value}` });
    else if (n > 1) {
      // A key listed twice (an `add map` by hand): `del map` drops every copy, then one is added back.
      before.push({ command: `del map ${file} ${key}` });
      after.push({ command: `add map ${file} ${key} ${value}` });
    } else if (current.get(key) !== value) before.push({ command: `set map ${file} ${key} ${value}` });
  }
  return { before, after };
}

/** `show map <file>` → its entries in order (`0x55d… key value` lines). */
export function parseShowMapEntries(answer: string): PinMapEntry[] {
  const out: PinMapEntry[] = [];
  for (const line of answer.split("\n")) {
    const m = /^0x[0-9a-f]+ (\S+) ?(.*)$/.exec(line.trim());
    if (m) out.push([m[1]!, m[2]!]);
  }
  return out;
}

/** `show map <file>` → key → value (the last entry of a key listed twice). */
export function parseShowMap(answer: string): Map<string, string> {
  return new Map(parseShowMapEntries(answer));
}

/** A map file's entries (`key value` lines; blank lines and `#` comments skipped, as HAProxy does). */
export function parseMapFile(text: string): PinMapEntry[] {
  const out: PinMapEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (m) out.push([m[1]!, m[2]!]);
  }
  return out;
}

/**
 * How a pin map (`where`: "live map", "pin.map on disk") differs from the entries it must hold
 * (config.ts `pinEntries`: one per version the router has as a server, plus the 404 list). Empty = exact.
 * Pure; `host check` reports it, `host repair` (Router.apply → planPinMap) fixes it.
 */
export function pinMapProblems(
  where: string,
  entries: PinMapEntry[],
  wanted: Map<string, string>,
  runningKey: string,
): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string[]>();
  for (const [key, value] of entries) seen.set(key, [...(seen.get(key) ?? []), value]);
  const versions = (m: Map<string, unknown>) => [...m.keys()].filter((k) => k !== runningKey);
  const missing = versions(wanted).filter((k) => !seen.has(k));
  const extra = versions(seen).filter((k) => !wanted.has(k));
  if (missing.length) problems.push(`${where} lacks ${missing.join(", ")}`);
  if (extra.length) problems.push(`${where} lists ${extra.join(", ")}, not a server`);
  for (const [key, values] of seen) {
    const want = wanted.get(key);
    if (key === runningKey) {
      if (values.length !== 1 || values[0] !== want)
        problems.push(`${where} 404 list is ${values.join(" + ") || "empty"}, want ${want ?? "none"}`);
    } else if (values.length > 1) problems.push(`${where} lists ${key} ${values.length} times`);
    else if (want !== undefined && values[0] !== want)
      problems.push(`${where} sends ${key} to ${values[0] || "nothing"}, want ${want}`);
  }
  if (!seen.has(runningKey) && wanted.has(runningKey))
    problems.push(`${where} 404 list missing, want ${wanted.get(runningKey)}`);
  return problems;
}
