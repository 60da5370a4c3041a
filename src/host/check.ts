import { randomBytes } from "node:crypto";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { Engine } from "../engine/engine.js";
import { Ledger } from "../ledger/ledger.js";
import type { LedgerData } from "../ledger/schema.js";
import { PIN_RUNNING_KEY, pinEntries } from "../router/config.js";
import { driftProblems, parseMapFile, pinMapProblems } from "../router/planner.js";
import { haproxyBinary } from "../router/process.js";
import { Router } from "../router/router.js";
import { CommandFailed, runChecked } from "../util/command.js";
import { isUserError } from "../util/errors.js";
import { pidAlive } from "../util/process.js";
import { stateDirProblem } from "../util/state-dir.js";

export interface HostCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** The exact command (or action) that fixes it, when not ok. */
  fix?: string;
}

const MIN_HAPROXY = [2, 6];

/** Everything `modelship host check` verifies, in the order a human would fix it. */
export async function checkHost(stateDir: string): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  const sd = `--state-dir ${stateDir}`;
  const { untrusted, ...stateDirCheck } = await checkStateDir(stateDir);
  checks.push(stateDirCheck);
  // A state dir another user could have prepared is not read any further (nothing in it is trusted).
  if (untrusted) return checks;
  checks.push(await checkEngine());

  let router: Router | undefined;
  try {
    router = await Router.open(stateDir);
  } catch (err) {
    checks.push({
      name: "router settings",
      ok: false,
      detail: isUserError(err) ? err.message : String(err),
      fix: `modelship host init ${sd}`,
    });
    return checks;
  }
  const bin = await haproxyBinary().catch(() => "haproxy");
  const installed = await haproxyVersion(bin);
  checks.push(
    installed.ok
      ? { name: "haproxy installed", ok: true, detail: `${bin} ${installed.version}` }
      : {
          name: "haproxy installed",
          ok: false,
          detail: installed.detail,
          fix: "sudo apt-get install -y haproxy   # HAProxy 2.6 or newer",
        },
  );

  const p = router.paths;
  const configOk = await stat(p.config).then(
    () => true,
    () => false,
  );
  if (!configOk) {
    checks.push({
      name: "haproxy config",
      ok: false,
      detail: `${p.config} missing`,
      fix: `modelship host init ${sd}`,
    });
  } else if (installed.ok) {
    try {
      await runChecked(bin, ["-c", "-q", "-f", p.config], { timeoutMs: 30_000 });
      checks.push({ name: "haproxy config", ok: true, detail: `${p.config} valid` });
    } catch (err) {
      const msg = (err instanceof CommandFailed ? err.stderr : "")
        .split("\n")
        .find((l) => l.includes("ALERT"));
      checks.push({
        name: "haproxy config",
        ok: false,
        detail: `${p.config} invalid: ${msg?.trim() ?? "haproxy -c failed"}`,
        fix: `modelship host repair ${sd}`,
      });
    }
  }

  const live = await router.running();
  const ours = live && live.configPath === p.config;
  checks.push(
    ours
      ? { name: "haproxy running", ok: true, detail: `pid ${live.pid}, edge ${router.edgeUrl()}` }
      : {
          name: "haproxy running",
          ok: false,
          detail: live ? `pid ${live.pid} runs ${live.configPath ?? "another config"}` : "not running",
          fix:
            router.settings.supervisor === "systemd"
              ? `sudo systemctl start ${router.settings.systemdUnit}`
              : `modelship host repair ${sd}`,
        },
  );

  const socketMode = await stat(p.socket).then(
    (s) => s.mode & 0o777,
    () => undefined,
  );
  const answers = socketMode !== undefined && (await router.answers());
  if (!answers) {
    checks.push({
      name: "runtime API",
      ok: false,
      detail: socketMode === undefined ? `${p.socket} missing` : `${p.socket} does not answer`,
      fix: `modelship host repair ${sd}`,
    });
  } else if (socketMode !== 0o660) {
    checks.push({
      name: "runtime API",
      ok: false,
      detail: `${p.socket} has mode ${socketMode.toString(8)}, want 660 (admin level: owner and group only)`,
      fix: `modelship host repair ${sd}`,
    });
  } else {
    checks.push({ name: "runtime API", ok: true, detail: `${p.socket} (mode 660, admin)` });
  }

  if (answers) {
    checks.push(await checkListening(router, sd));
    checks.push(await checkLiveMatchesDesired(router, sd));
  }
  if (router.settings.pin.enabled) checks.push(await checkPinMap(router, answers, sd));
  checks.push(...(await checkLedger(stateDir, router, answers)));
  return checks;
}

/**
 * The deploy ledger: readable, no operation a crashed process left behind, and the stable version
 * serving (container running, HAProxy's health check passing). Each failure names the command that fixes it.
 */
async function checkLedger(stateDir: string, router: Router, answers: boolean): Promise<HostCheck[]> {
  const sd = `--state-dir ${stateDir}`;
  const ledger = new Ledger(stateDir);
  let data: LedgerData;
  try {
    data = await ledger.read();
  } catch (err) {
    return [
      {
        name: "deploy ledger",
        ok: false,
        detail: isUserError(err) ? err.message : String(err),
        fix: `modelship host repair ${sd}   # restores it from ledger.json.bak or rebuilds it from the running containers`,
      },
    ];
  }
  const checks: HostCheck[] = [
    { name: "deploy ledger", ok: true, detail: `${ledger.file} (${data.versions.length} version(s))` },
  ];
  if (data.operation) {
    const op = data.operation;
    const running = (op.host !== hostname() || pidAlive(op.pid)) && (await ledger.isLocked());
    checks.push(
      running
        ? { name: "operation", ok: true, detail: `${op.kind} in progress (pid ${op.pid}) at "${op.step}"` }
        : {
            name: "operation",
            ok: false,
            detail: `${op.kind}${op.target ? ` of ${op.target}` : ""} was interrupted at "${op.step}" (pid ${op.pid} is gone)`,
            fix: `modelship host repair ${sd}`,
          },
    );
  }
  const stable = data.versions.find((v) => v.role === "stable");
  if (stable) {
    const server = answers
      ? (await router.stats().catch(() => [])).find((s) => s.name === stable.version)
      : undefined;
    const container = stable.container
      ? await new Engine().inspectContainer(stable.container.id).catch(() => null)
      : null;
    const standby = data.versions.find((v) => v.role === "standby");
    const fix = standby
      ? `modelship rollback --to ${standby.version} --reason "stable down" ${sd}`
      : `modelship host repair ${sd}   # then, if it stays down: docker logs ${stable.container?.name ?? stable.version}`;
    if (!container?.running)
      checks.push({
        name: "stable version",
        ok: false,
        detail: `${stable.version}: container ${stable.container?.name ?? "(none)"} is not running`,
        fix,
      });
    else if (answers && !server?.up)
      checks.push({
        name: "stable version",
        ok: false,
        detail: `${stable.version}: HAProxy reports it ${server ? server.status : "absent"}`,
        fix,
      });
    else
      checks.push({
        name: "stable version",
        ok: true,
        detail: `${stable.version} ${answers ? "UP" : "running"} on port ${stable.container?.hostPort}`,
      });
  }
  return checks;
}

async function checkStateDir(stateDir: string): Promise<HostCheck & { untrusted?: boolean }> {
  const fix = `modelship host init --state-dir ${stateDir}   # or: sudo install -d -m 750 -o "$(id -un)" ${stateDir}`;
  const problem = await stateDirProblem(stateDir);
  if (problem)
    return {
      name: "state dir",
      ok: false,
      untrusted: true,
      detail: `refusing to use ${stateDir}: ${problem.detail}`,
      fix: `run as the owner of ${stateDir}, or recreate it owned by you with mode 750: sudo install -d -m 750 -o "$(id -un)" ${stateDir}`,
    };
  try {
    const s = await stat(stateDir);
    if (!s.isDirectory())
      return { name: "state dir", ok: false, detail: `${stateDir} is not a directory`, fix };
    const probe = join(stateDir, `.probe-${randomBytes(4).toString("hex")}`);
    await writeFile(probe, "");
    await rm(probe, { force: true });
    return {
      name: "state dir",
      ok: true,
      detail: `${stateDir} writable (mode ${(s.mode & 0o777).toString(8)})`,
    };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      name: "state dir",
      ok: false,
      detail: code === "ENOENT" ? `${stateDir} does not exist` : `${stateDir} not writable (${code})`,
      fix,
    };
  }
}

async function checkEngine(): Promise<HostCheck> {
  try {
    const info = await new Engine().info();
    return {
      name: "container engine",
      ok: true,
      detail: `${info.server} ${info.serverVersion} at ${info.host}`,
    };
  } catch (err) {
    return {
      name: "container engine",
      ok: false,
      detail: isUserError(err) ? err.message : String(err),
      fix: "sudo modelship host setup   # installs and starts an engine (Docker, else Podman's Docker API)",
    };
  }
}

async function haproxyVersion(
  bin: string,
): Promise<{ ok: true; version: string } | { ok: false; detail: string }> {
  try {
    const { stdout } = await runChecked(bin, ["-v"], { timeoutMs: 10_000 });
    const m = /version (\d+)\.(\d+)(\.\S+)?/.exec(stdout);
    if (!m) return { ok: false, detail: `cannot read the version from '${bin} -v'` };
    const major = Number(m[1]);
    const minor = Number(m[2]);
    const version = `${m[1]}.${m[2]}${m[3] ?? ""}`;
    const [wantMajor = 2, wantMinor = 6] = MIN_HAPROXY;
    if (major < wantMajor || (major === wantMajor && minor < wantMinor))
      return { ok: false, detail: `${bin} is ${version}; modelship needs 2.6+ (dynamic servers, retry-on)` };
    return { ok: true, version };
  } catch {
    return { ok: false, detail: `${bin} not found` };
  }
}

/** The edge answers HTTP (any status: 503 just means no model yet) and the exporter serves metrics. */
async function checkListening(router: Router, sd: string): Promise<HostCheck> {
  const get = async (url: string) => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      const body = await res.text();
      return { status: res.status, body };
    } catch (err) {
      return { status: 0, body: (err as Error).message };
    }
  };
  const edge = await get(router.edgeUrl());
  const metrics = await get(router.metricsUrl());
  const exporting = metrics.status === 200 && metrics.body.includes("haproxy_process_");
  if (edge.status > 0 && exporting)
    return {
      name: "edge and exporter",
      ok: true,
      detail: `${router.edgeUrl()} answers (HTTP ${edge.status}), ${router.metricsUrl()} exports`,
    };
  return {
    name: "edge and exporter",
    ok: false,
    detail: edge.status === 0 ? `${router.edgeUrl()} not answering` : `${router.metricsUrl()} not exporting`,
    fix: `modelship host repair ${sd}   # or re-run \`modelship host init\` with free --edge-port/--metrics-port`,
  };
}

/** Drift between the desired state on disk and the live process (someone poked the socket, or a crash). */
async function checkLiveMatchesDesired(router: Router, sd: string): Promise<HostCheck> {
  const desired = await router.readDesired();
  const problems = driftProblems(await router.liveServers(), desired);
  return problems.length === 0
    ? { name: "router state", ok: true, detail: `${desired.servers.length} server(s) as desired` }
    : { name: "router state", ok: false, detail: problems.join(", "), fix: `modelship host repair ${sd}` };
}

/**
 * Pinning on (docs/pinning.md): the pin map on disk (loaded at start and reload) and in the running
 * process (`show map`) list exactly the versions the router has as servers, and the 404 list of them.
 */
async function checkPinMap(router: Router, answers: boolean, sd: string): Promise<HostCheck> {
  const desired = await router.readDesired();
  const wanted = pinEntries(desired);
  const fix = `modelship host repair ${sd}`;
  const file = router.paths.pinMap;
  const text = await readFile(file, "utf8").catch(() => undefined);
  const problems =
    text === undefined
      ? [`${file} missing`]
      : pinMapProblems("pin.map on disk", parseMapFile(text), wanted, PIN_RUNNING_KEY);
  if (answers) {
    const live = await router.livePinMap();
    if (!live) problems.unshift("the running HAProxy has no pin map loaded (started before pinning was on)");
    else problems.unshift(...pinMapProblems("live map", live, wanted, PIN_RUNNING_KEY));
  }
  if (problems.length > 0) return { name: "pin map", ok: false, detail: problems.join("; "), fix };
  const versions = [...wanted.keys()].filter((k) => k !== PIN_RUNNING_KEY);
  return {
    name: "pin map",
    ok: true,
    detail: `${versions.length} pinnable version(s)${versions.length ? `: ${versions.join(", ")}` : ""} (${answers ? "live and on disk" : "on disk"}, header ${router.settings.pin.header})`,
  };
}
