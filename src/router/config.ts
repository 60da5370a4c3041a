import { isIP } from "node:net";
import { join } from "node:path";
import {
  BACKEND,
  percentToWeight,
  type RouterDesired,
  type RouterSettings,
  type ServerSpec,
  type ShadowTarget,
} from "./schema.js";

/** Files the traffic layer keeps in the state dir. */
export interface RouterPaths {
  config: string;
  socket: string;
  pidfile: string;
  /** `show servers state` dump handed from an old process to the new one across a reload. */
  serverState: string;
  /** Counters of HAProxy processes replaced by reloads (a new process starts from 0). */
  counterCarry: string;
  /** Router settings written by `host init` (ports, bind addresses, health-check timings). */
  settings: string;
  /** The servers we want (name, address, weight %, state): the config is rendered from it. */
  desired: string;
  lock: string;
  /** The shadow mirror's Lua, loaded only while a shadow target is set. */
  shadowLua: string;
  /** Versions a pinned request may name (HAProxy map, changed live through the runtime API). */
  pinMap: string;
}

export function routerPaths(stateDir: string): RouterPaths {
  const dir = join(stateDir, "haproxy");
  return {
    config: join(dir, "haproxy.cfg"),
    socket: join(dir, "haproxy.sock"),
    pidfile: join(dir, "haproxy.pid"),
    serverState: join(dir, "server-state"),
    counterCarry: join(dir, "counters-carry.json"),
    settings: join(stateDir, "router.json"),
    desired: join(stateDir, "router-desired.json"),
    lock: join(dir, "router"),
    shadowLua: join(dir, "shadow.lua"),
    pinMap: join(dir, "pin.map"),
  };
}

const ms = (n: number) => `${n}ms`;

const socketGroup = (settings: RouterSettings) => {
  const g = settings.socketGroup;
  if (!g) return "";
  return /^\d+$/.test(g) ? ` gid ${g}` : ` group ${g}`;
};

/** The keywords a server line needs; also used for `add server`, which does not inherit default-server in 2.6. */
export function serverKeywords(settings: RouterSettings, spec: ServerSpec, forConfig: boolean): string {
  const h = settings.health;
  const weight = spec.state === "ready" ? percentToWeight(spec.weight) : 0;
  const words = [
    `${spec.address}:${spec.port}`,
    `weight ${weight}`,
    "check",
    `inter ${ms(h.interMs)}`,
    `fastinter ${ms(h.fastInterMs)}`,
    `downinter ${ms(h.downInterMs)}`,
    `fall ${h.fall}`,
    `rise ${h.rise}`,
  ];
  // Passive check: connection errors seen on live traffic mark the server DOWN at once, so the
  // retries of the very requests that hit a dead container are redispatched elsewhere (to the
  // backup when it was the last regular server) instead of burning all attempts on it.
  if (h.errorLimit > 0) words.push(`observe layer4 error-limit ${h.errorLimit} on-error mark-down`);
  if (h.slowstartMs > 0) words.push(`slowstart ${ms(h.slowstartMs)}`);
  if (spec.backup) words.push("backup");
  // "disabled" starts the server in maintenance; drain is expressed as weight 0 in the file and as
  // the DRAIN admin state at runtime (both send it no new requests; checks keep running).
  if (forConfig && spec.state === "maint") words.push("disabled");
  return words.join(" ");
}

/**
 * Errors HAProxy answers itself at the edge (bad request, client timeout, no server, server failed or
 * timed out), in the model server's error shape: `{"error": "<one line>"}` as application/json.
 */
export const EDGE_ERRORS: Record<number, string> = {
  400: "bad request: the edge could not parse it",
  403: "forbidden",
  408: "request timeout: the request was not received in time",
  429: "too many requests",
  500: "internal error at the edge",
  502: "bad gateway: the model server sent an invalid response",
  503: "no model server is available; retry shortly",
  504: "gateway timeout: the model server did not answer in time",
};

function edgeErrorLines(): string[] {
  return Object.entries(EDGE_ERRORS).map(
    ([status, message]) =>
      // JSON.stringify of our fixed ASCII messages never contains a single quote.
      `    http-error status ${status} content-type application/json string '${JSON.stringify({ error: message })}'`,
  );
}

/** `user`/`group` lines: HAProxy binds (and creates its socket) as root, then runs as this account. */
function runAsLines(settings: RouterSettings): string {
  if (!settings.runAs || settings.runAs === "root") return "";
  const [user, group = user] = settings.runAs.split(":");
  return `    # bound as root, runs unprivileged from here on
    user ${user}
    group ${group}
`;
}

/** `http://address:port/predict` of a shadow target (IPv6 in brackets). */
export function shadowUrl(t: ShadowTarget): string {
  const host = isIP(t.address) === 6 ? `[${t.address}]` : t.address;
  return `http://${host}:${t.port}/predict`;
}

/** Global lines of the shadow mirror: its settings (validated numbers and address), then the Lua. */
function shadowGlobal(p: RouterPaths, t: ShadowTarget | undefined): string {
  if (!t) return "";
  const env: [string, string | number][] = [
    ["URL", shadowUrl(t)],
    ["SHARE", t.share],
    ["RATE", t.ratePerSec],
    ["TIMEOUT_MS", t.timeoutMs],
    ["QUEUE", t.queue],
    ["WORKERS", t.workers],
    ["KEEP", t.keep],
  ];
  return `    # shadow mirror to ${t.name} (docs/shadow.md); setenv must precede lua-load
${env.map(([k, v]) => `    setenv MODELSHIP_SHADOW_${k} ${v}`).join("\n")}
    lua-load ${p.shadowLua}
`;
}

/** Edge lines of the shadow mirror: sample the request, then (after stable answered) queue the copy. */
function shadowEdge(t: ShadowTarget | undefined, pin: boolean): string {
  if (!t) return "";
  // A pinned request is a person trying one version, not live traffic: it is never mirrored.
  return `    # shadow: copy sampled POST /predict to the candidate after stable answered (never on the user's path)
    http-request lua.shadow_req if METH_POST { path /predict }${pin ? " !{ var(txn.pin) -m found }" : ""}
    http-response wait-for-body time 1s if { var(txn.shadow_body) -m found }
    http-response lua.shadow_res if { var(txn.shadow_body) -m found }
`;
}

/** Backend of the pinned requests that name the shadow candidate (it is no server of `models`). */
export const PIN_SHADOW_BACKEND = "pin_shadow";
/** Map key holding the running versions as a JSON list body (`"v1","v2"`): no version can be named so. */
export const PIN_RUNNING_KEY = "@running";
/** What a version name must look like to be looked up at all (ServerName's pattern). */
const PIN_VALUE = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

/** One-line JSON error bodies (fixed ASCII text: no quote can end the config string). */
const jsonError = (message: string) => JSON.stringify({ error: message });

/**
 * The versions a pinned request may name, as HAProxy map entries (version → where it runs): the
 * backend's servers that take requests (ready or draining: stable, canary, standby) and the shadow
 * candidate. Plus the list of them for the 404 body. Pure; the file and the live map hold exactly this.
 */
export function pinEntries(desired: RouterDesired): Map<string, string> {
  const entries = new Map<string, string>();
  for (const s of desired.servers) if (s.state !== "maint") entries.set(s.name, BACKEND);
  if (desired.shadow && !entries.has(desired.shadow.name))
    entries.set(desired.shadow.name, PIN_SHADOW_BACKEND);
  const names = [...entries.keys()].sort();
  if (names.length > 0) entries.set(PIN_RUNNING_KEY, names.map((n) => `"${n}"`).join(","));
  return entries;
}

/** The map file's text for `desired` (read by HAProxy at start and reload). */
export function renderPinMap(desired: RouterDesired): string {
  const lines = [...pinEntries(desired)].map(([k, v]) => `${k} ${v}`);
  return `# Generated by modelship: versions a pinned request may name (docs/pinning.md)\n${lines.map((l) => `${l}\n`).join("")}`;
}

/**
 * Edge lines of pinning by header (docs/pinning.md). The header's value must look like a version (else
 * 400), must name a version in the map (else 404 listing those that run); the backend's `use-server`
 * then picks that server by name, which follows servers added and deleted through the runtime API.
 * A pinned request is never answered by another version: no L7 retry, and if HAProxy had to send it
 * elsewhere (the version went down meanwhile) the answer is replaced by a 503 naming the version.
 */
function pinEdge(settings: RouterSettings, p: RouterPaths, t: ShadowTarget | undefined): string {
  if (!settings.pin.enabled) return "";
  const h = settings.pin.header;
  const pinned = "{ var(txn.pin) -m found }";
  const bad = jsonError(`${h} must name one version: letters, digits and _.- (max 64 characters)`);
  const notRunning = `{"error":"version %[var(txn.pin),json(ascii)] does not run here (${h})","running":[%[str(${PIN_RUNNING_KEY}),map(${p.pinMap})]]}`;
  const gone = `{"error":"version %[var(txn.pin),json(ascii)] did not answer: it is down or restarting (${h})"}`;
  return `    # pinning: "${h}: <version>" goes to that version if it runs, else 404 (docs/pinning.md)
    http-request set-var(txn.pin) req.fhdr(${h}) if { req.fhdr(${h}) -m found }
    http-request return status 400 content-type application/json string '${bad}' if ${pinned} { req.fhdr_cnt(${h}) gt 1 }
    http-request return status 400 content-type application/json string '${bad}' if ${pinned} !{ var(txn.pin) -m reg ${PIN_VALUE} }
    http-request return status 404 content-type application/json lf-string '${notRunning}' if ${pinned} !{ var(txn.pin),map(${p.pinMap}) -m found }
    http-request disable-l7-retry if ${pinned}
${t ? `    use_backend ${PIN_SHADOW_BACKEND} if { var(txn.pin) -m str ${t.name} }\n` : ""}    http-response return status 503 content-type application/json lf-string '${gone}' if ${pinned} !{ srv_name,strcmp(txn.pin) eq 0 }
`;
}

/** The backend of pinned requests to the shadow candidate (only while pinning is on and a mirror runs). */
function pinShadowBackend(settings: RouterSettings, t: ShadowTarget | undefined): string {
  if (!settings.pin.enabled || !t) return "";
  const host = isIP(t.address) === 6 ? `[${t.address}]` : t.address;
  return `
backend ${PIN_SHADOW_BACKEND}
    # requests pinned to the shadow candidate ${t.name} (docs/pinning.md); the mirror itself does not pass here
    server ${t.name} ${host}:${t.port}
`;
}

/** Renders haproxy.cfg from the desired state. Pure: same input → same bytes. */
export function renderConfig(settings: RouterSettings, desired: RouterDesired): string {
  const p = routerPaths(settings.stateDir);
  const t = settings.timeouts;
  const h = settings.health;
  const retryOn = ["conn-failure", "empty-response", "response-timeout"];
  // 500 is retried because /predict is a pure function of its input (no side effects to repeat):
  // a canary that throws must not cost a user a failed request. HAProxy 2.6 counts a retried failure
  // only in that server's retries (wretr / haproxy_server_retry_warnings_total), not in hrsp_5xx:
  // stats.ts folds retries into `failedAttempts` so the canary analysis still sees it.
  if (settings.retryOn500) retryOn.push("500");
  retryOn.push("502", "503", "504");
  const servers = desired.servers.map((s) => `    server ${s.name} ${serverKeywords(settings, s, true)}`);
  return `# Generated by modelship — do not edit: \`modelship host repair\` rewrites it from ${p.desired}.
global
    pidfile ${p.pidfile}
    # admin level for weights/drain/add/del; expose-fd lets a reload (-x) take over the listening
    # sockets, so no connection is refused while the old process hands over.
    stats socket ${p.socket} mode 660${socketGroup(settings)} level admin expose-fd listeners
    stats timeout 30s
    server-state-file ${p.serverState}
    maxconn ${settings.maxconn}
    hard-stop-after ${ms(t.hardStopAfterMs)}
${runAsLines(settings)}${shadowGlobal(p, desired.shadow)}
defaults
    mode http
    timeout connect ${ms(t.connectMs)}
    timeout client ${ms(t.clientMs)}
    timeout server ${ms(t.serverMs)}
    timeout http-request ${ms(t.httpRequestMs)}
    timeout http-keep-alive ${ms(t.keepAliveMs)}
    timeout queue ${ms(t.queueMs)}
    timeout check ${ms(h.timeoutMs)}
    # Keep-alive on both sides (HAProxy's default mode) rather than http-server-close: a new backend
    # connection per request costs throughput and latency, idle pooled connections do not count as
    # sessions (so drain still reaches 0), and a backend closing an idle connection under us is
    # covered by retry-on conn-failure/empty-response.
    option http-keep-alive
    # On reload the old process would close idle client connections at once, racing a client that
    # is just sending its next request on one (a reset it cannot retry). Instead it answers that
    # request, then closes (bounded by timeout http-keep-alive and hard-stop-after).
    option idle-close-on-response
    # Retries need the whole request in the buffer; /predict bodies are small.
    option http-buffer-request
    # Each client connection keeps its own server connection (still keep-alive). Sharing idle
    # connections across clients ("safe") let retries after a container crash land on pooled
    # connections that were already dead, exhausting all attempts: measured 3 failed requests in 12
    # crash runs with "safe", none with "never".
    http-reuse never
    retries ${settings.retries}
    option redispatch 1
    retry-on ${retryOn.join(" ")}
    load-server-state-from-file global
    # Errors HAProxy itself answers are JSON like the model server's: {"error": "..."}
${edgeErrorLines().join("\n")}

frontend edge
    bind ${settings.edge.bind}:${settings.edge.port}
${pinEdge(settings, p, desired.shadow)}${shadowEdge(desired.shadow, settings.pin.enabled)}    default_backend ${BACKEND}

frontend prometheus
    bind ${settings.metrics.bind}:${settings.metrics.port}
${desired.shadow ? "    http-request use-service lua.shadow_pairs if { path /shadow/pairs }\n" : ""}    http-request use-service prometheus-exporter if { path /metrics }
    stats enable
    stats uri /stats
    stats refresh 5s

backend ${BACKEND}
    balance roundrobin
    # Backups (warm standby) take over, sharing by weight, when no regular server is usable: down,
    # in maintenance, or at weight 0 (so a rollback to the standby is a weight change, no reload).
    option allbackups
    option httpchk GET ${h.path}
    http-check expect status 200
${settings.pin.enabled ? "    use-server %[var(txn.pin)] if { var(txn.pin) -m found }\n" : ""}${servers.join("\n")}
${pinShadowBackend(settings, desired.shadow)}`;
}
