import { isIP } from "node:net";
import { z } from "zod";

/**
 * Typed settings and desired state of the traffic layer. `src/router/` is the only code that knows
 * HAProxy; everything else talks in these shapes (server name = model version, weight = percent).
 */

/** HAProxy server names double as version labels: keep them to characters HAProxy accepts. */
export const ServerName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "server name: letters, digits, '_', '.', '-' (max 64)");

export const ServerState = z.enum(["ready", "drain", "maint"]);
export type ServerState = z.infer<typeof ServerState>;

export const ServerSpec = z.strictObject({
  name: ServerName,
  address: z
    .string()
    .refine((v) => isIP(v) !== 0 || HOSTNAME.test(v), "address: an IP address or host name")
    .default("127.0.0.1"),
  port: z.number().int().min(1).max(65535),
  /** Share of traffic in percent (0–100); mapped to an HAProxy weight 0–256. */
  weight: z.number().min(0).max(100),
  state: ServerState.default("ready"),
  /**
   * A backup gets traffic only while no regular server is up (HAProxy `backup`): e.g. the warm
   * standby, so a crashed serving container costs users nothing while the engine restarts it.
   */
  backup: z.boolean().default(false),
});
export type ServerSpec = z.infer<typeof ServerSpec>;
export type ServerSpecInput = z.input<typeof ServerSpec>;

/**
 * The shadow mirror's target (docs/shadow.md): a candidate that gets COPIES of sampled POST /predict
 * requests after stable answered them; it is not a server of the backend and never answers a user.
 */
export const ShadowTarget = z.strictObject({
  name: ServerName,
  address: z
    .string()
    .refine((v) => isIP(v) !== 0 || HOSTNAME.test(v), "address: an IP address or host name")
    .default("127.0.0.1"),
  port: z.number().int().min(1).max(65535),
  /** Share of prediction requests copied (0 < share ≤ 1), up to ratePerSec. */
  share: z.number().gt(0).max(1).default(1),
  /**
   * Copies per second at most. The candidate runs on the same host: every copy is an inference that
   * competes with stable for CPU (bench:shadow: stable p99 1.77× with every request copied at 150/s,
   * ≈ 1× at 25–50/s); 25/s is still 1,500 pairs a minute and 75 in the 3 s `--fast` step.
   */
  ratePerSec: z.number().int().min(1).max(10_000).default(25),
  /** The candidate's answer is waited for at most this long (then the pair counts as an error). */
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
  /** Copies waiting for the candidate; more are dropped (and counted), never queued on a user. */
  queue: z.number().int().min(1).max(10_000).default(256),
  /** Concurrent copies in flight. */
  workers: z.number().int().min(1).max(32).default(4),
  /** Pairs kept for the comparison to read. */
  keep: z.number().int().min(10).max(100_000).default(5000),
});
export type ShadowTarget = z.infer<typeof ShadowTarget>;
export type ShadowTargetInput = z.input<typeof ShadowTarget>;

export const RouterDesired = z
  .strictObject({ servers: z.array(ServerSpec).default([]), shadow: ShadowTarget.optional() })
  .refine((d) => new Set(d.servers.map((s) => s.name)).size === d.servers.length, {
    message: "server names must be unique",
  });
export type RouterDesired = z.infer<typeof RouterDesired>;
export type RouterDesiredInput = z.input<typeof RouterDesired>;

const Port = z.number().int().min(1).max(65535);
const Millis = z
  .number()
  .int()
  .positive()
  .max(24 * 3600 * 1000);

/**
 * Every string below ends up in haproxy.cfg (or a systemd unit): each is held to a pattern that cannot
 * carry a newline, a space, a quote or a comment, so no value can add a directive (checked on input and
 * again whenever router.json is read back).
 */
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** A listen address: `*` / empty (all), an IPv4 or IPv6 address (optionally in brackets) or a host name. */
export const BindAddress = z.string().refine(
  (v) => {
    if (v === "" || v === "*") return true;
    const inner = v.startsWith("[") && v.endsWith("]") ? v.slice(1, -1) : v;
    if (isIP(inner) !== 0) return true;
    return inner === v && HOSTNAME.test(v);
  },
  { message: "bind address: an IP address, a host name or '*'" },
);
/** Absolute path of plain characters (it is written into haproxy.cfg and the systemd unit unquoted). */
export const SafePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._+@=,~/-]*$/, "an absolute path of letters, digits and ._+@=,~/- only");
/** A systemd unit file name (joined to /etc/systemd/system: no slashes). */
export const UnitName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,200}\.service$/,
    "a systemd unit name like modelship-haproxy.service",
  );

/** An HTTP header name (RFC 9110 token, the usual letters/digits/dashes); rendered into haproxy.cfg. */
export const HeaderName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/, "header name: letters, digits and '-' (max 64)")
  .transform((v) => v.toLowerCase());

export const DEFAULT_PIN_HEADER = "x-modelship-version";

export const RouterSettings = z.strictObject({
  /** Everything HAProxy needs at runtime lives here: config, socket, pid, server state. */
  stateDir: SafePath,
  edge: z.strictObject({ bind: BindAddress.default("0.0.0.0"), port: Port.default(8080) }).prefault({}),
  metrics: z.strictObject({ bind: BindAddress.default("127.0.0.1"), port: Port.default(8404) }).prefault({}),
  health: z
    .strictObject({
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~/-]*$/, "health path: an absolute URL path of letters, digits and ._~/-")
        .default("/ready"),
      interMs: Millis.default(1000),
      /** Interval while a server is changing state (UP→DOWN or back): takes a failing server out fast. */
      fastInterMs: Millis.default(250),
      downInterMs: Millis.default(1000),
      timeoutMs: Millis.default(1000),
      fall: z.number().int().min(1).default(2),
      rise: z.number().int().min(1).default(2),
      /** Consecutive connection errors on live traffic that mark a server DOWN before its next check (0 = off). */
      errorLimit: z.number().int().min(0).default(1),
      /** 0 = off; otherwise a server coming UP ramps its weight over this time. */
      slowstartMs: z.number().int().min(0).default(0),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      connectMs: Millis.default(1000),
      clientMs: Millis.default(30_000),
      serverMs: Millis.default(30_000),
      httpRequestMs: Millis.default(10_000),
      keepAliveMs: Millis.default(10_000),
      queueMs: Millis.default(5_000),
      /** Bounds how long an old process lingers after a reload while it finishes in-flight requests. */
      hardStopAfterMs: Millis.default(30_000),
      /** How long removing a server waits for its in-flight requests before leaving it for the next reload. */
      removeGraceMs: Millis.default(10_000),
    })
    .prefault({}),
  /**
   * Group (name or numeric gid) given access to the runtime API socket (mode 660). HAProxy usually
   * runs as root while deploys run as the CI runner's user: that user's group goes here.
   */
  socketGroup: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, "socketGroup: a group name or numeric gid")
    .optional(),
  retries: z.number().int().min(0).max(10).default(3),
  /** Retry a 500 on another server: safe because /predict is a pure function of its input. */
  retryOn500: z.boolean().default(true),
  maxconn: z.number().int().positive().max(1_000_000).default(4096),
  /**
   * Pinning by header (docs/pinning.md): a request naming a running version in `header` goes to that
   * version (stable, canary, standby or shadow candidate), a version that does not run gets a 404.
   * Off unless enabled (`host init --pin`).
   */
  pin: z
    .strictObject({
      enabled: z.boolean().default(false),
      header: HeaderName.default(DEFAULT_PIN_HEADER),
    })
    .prefault({}),
  /** "daemon": we start `haproxy -D` ourselves; "systemd": the host's unit owns the process. */
  supervisor: z.enum(["daemon", "systemd"]).default("daemon"),
  systemdUnit: UnitName.default("modelship-haproxy.service"),
  /**
   * User HAProxy drops to after binding its ports (global `user`/`group`), when started as root.
   * `host init` sets it to `haproxy` when that account exists; "root" keeps root (not recommended).
   */
  runAs: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/, "runAs: a user name or user:group")
    .optional(),
});
export type RouterSettings = z.infer<typeof RouterSettings>;
export type RouterSettingsInput = z.input<typeof RouterSettings>;

export const BACKEND = "models";
export const MAX_HAPROXY_WEIGHT = 256;

/** Percent (0–100) → HAProxy weight (0–256). Any non-zero share gets at least weight 1. */
export function percentToWeight(percent: number): number {
  if (percent <= 0) return 0;
  return Math.max(1, Math.min(MAX_HAPROXY_WEIGHT, Math.round((percent * MAX_HAPROXY_WEIGHT) / 100)));
}

export function weightToPercent(weight: number): number {
  return Math.round(((weight * 100) / MAX_HAPROXY_WEIGHT) * 10) / 10;
}
