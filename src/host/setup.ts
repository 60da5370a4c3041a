import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { CommandFailed, runChecked, startDetached, tail } from "../util/command.js";
import { ExitCode, UserError } from "../util/errors.js";
import { atomicWriteFile } from "../util/fs.js";
import type { Reporter } from "../util/progress.js";
import { findEngine, gatherHostFacts, probeSocket } from "./setup-facts.js";
import {
  blocker,
  type HostFacts,
  planCommands,
  planSetup,
  type SetupOptions,
  type SetupPlan,
  type SetupStep,
} from "./setup-plan.js";

/** Extra commands CI needs beyond modelship itself (benchmarks, monitoring tests): command → package. */
export const CI_EXTRAS: Record<string, string> = {
  wrk: "wrk",
  prometheus: "prometheus",
  promtool: "prometheus",
};

export interface HostSetupOptions extends SetupOptions {
  /** Run the plan (as root on Debian/Ubuntu); false: print it and stop with exit 3 if anything is needed. */
  install: boolean;
  /** How long the engine may take to answer after it was started. */
  engineTimeoutMs?: number;
}

export interface HostSetupResult {
  engine: SetupPlan["engine"];
  dockerHost: string;
  /** "Podman Engine 4.3.1", … */
  server: string;
  haproxy: string;
  /** What was done, one line per step (empty when the host was ready). */
  done: string[];
  notes: string[];
}

/**
 * Brings this host to "engine answers, HAProxy ≥ 2.6 installed" with the plan from setup-plan.ts, and
 * points process.env.DOCKER_HOST at the engine. Not root / not Debian / install=false: prints the exact
 * commands and throws (exit 3).
 */
export async function setupHost(reporter: Reporter, options: HostSetupOptions): Promise<HostSetupResult> {
  const extras = Object.keys(options.extras ?? {});
  let facts = await reporter.step(
    "Reading the host",
    () => gatherHostFacts({ extras }),
    (f) => describeFacts(f),
  );
  let plan = planSetup(facts, options);
  const done: string[] = [];
  if (plan.steps.length > 0) {
    const why = !options.install ? "--no-install was given" : blocker(facts);
    if (why) refuse(reporter, plan, facts, why);
    try {
      try {
        await runSteps(plan, reporter, done, options.engineTimeoutMs);
      } catch (err) {
        if (plan.engine !== "docker" || !(err instanceof EngineTimeout)) throw err;
        // The Docker daemon would not start here (no privileges, storage driver, …): Podman instead.
        reporter.warn(`${err.message}; using Podman's Docker API instead`);
        facts = { ...(await gatherHostFacts({ extras })), dockerFailed: true };
        plan = planSetup(facts, options);
        await runSteps(plan, reporter, done, options.engineTimeoutMs);
      }
    } catch (err) {
      if (!(err instanceof EngineTimeout)) throw err;
      const log = plan.steps.find((s) => s.kind === "service");
      throw new UserError(err.message, {
        exitCode: ExitCode.environment,
        hint:
          log && log.kind === "service" ? `see ${log.log}` : "see `journalctl -u docker` / the engine's log",
      });
    }
    facts = await gatherHostFacts({ extras, env: { ...process.env, DOCKER_HOST: plan.dockerHost } });
    const left = planSetup(facts, options);
    if (left.steps.length > 0)
      throw new UserError(`host setup incomplete: still needed: ${left.steps.map((s) => s.why).join(", ")}`, {
        exitCode: ExitCode.environment,
        hint: "see the ✗ step above; `modelship host setup` prints every command",
      });
    plan = { ...plan, notes: left.notes };
  }
  process.env.DOCKER_HOST = plan.dockerHost;
  return {
    engine: plan.engine,
    dockerHost: plan.dockerHost,
    server: facts.engine?.server ?? "engine",
    haproxy: facts.haproxy ?? "?",
    done,
    notes: plan.notes,
  };
}

function describeFacts(f: HostFacts): string {
  const parts = [
    f.osName,
    f.root ? "root" : "not root",
    f.systemd ? "systemd" : "no systemd",
    f.engine ? `engine: ${f.engine.server}` : "no engine answers",
    f.haproxy ? `HAProxy ${f.haproxy}` : "no HAProxy",
  ];
  return `(${parts.join("; ")})`;
}

function refuse(reporter: Reporter, plan: SetupPlan, facts: HostFacts, why: string): never {
  const missing = [
    ...(plan.steps.some((s) => s.kind === "apt-install" && s.packages.includes("haproxy"))
      ? ["HAProxy 2.6+"]
      : []),
    ...(plan.engine === "existing" ? [] : ["a container engine"]),
  ];
  const what = missing.length ? missing.join(" and ") : "packages";
  const commands = planCommands(plan, facts);
  reporter.info(`This host needs: ${what}. Run:\n${commands.map((c) => `  ${c}`).join("\n")}`);
  reporter.event({
    type: "plan",
    engine: plan.engine,
    dockerHost: plan.dockerHost,
    commands,
    notes: plan.notes,
  });
  throw new UserError(`missing ${what}; ${why}, so nothing was installed`, {
    exitCode: ExitCode.environment,
    hint: "run the commands above (or this command as root on Debian/Ubuntu), then try again",
  });
}

class EngineTimeout extends Error {}

async function runSteps(
  plan: SetupPlan,
  reporter: Reporter,
  done: string[],
  engineTimeoutMs = 30_000,
): Promise<void> {
  for (const step of plan.steps) {
    await reporter.step(
      `Host setup: ${step.why}`,
      () => runStep(step, engineTimeoutMs),
      (d) => d,
    );
    done.push(step.why);
  }
}

async function runStep(step: SetupStep, engineTimeoutMs: number): Promise<string> {
  switch (step.kind) {
    case "apt-update":
      await sh(["apt-get", "update", "-qq"], step.command);
      return step.command;
    case "apt-install":
      await sh(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...step.packages],
        step.command,
      );
      return step.packages.join(" ");
    case "write-file":
      await mkdir(dirname(step.path), { recursive: true });
      await atomicWriteFile(step.path, step.content);
      return step.path;
    case "systemctl":
      await sh(["systemctl", ...step.args], step.command);
      return step.command;
    case "service":
      return `pid ${await startSupervised(step)}, log ${step.log}`;
    case "wait-engine": {
      const server = await waitForEngine(step.dockerHost, engineTimeoutMs);
      const path = step.dockerHost.slice("unix://".length);
      if (step.socketGroup && step.dockerHost.startsWith("unix://"))
        await sh(["sh", "-c", `chgrp ${step.socketGroup} ${path} && chmod 660 ${path}`], "chgrp");
      process.env.DOCKER_HOST = step.dockerHost;
      return `${server} at ${step.dockerHost}`;
    }
  }
}

async function sh(argv: string[], shown: string): Promise<void> {
  const [cmd, ...args] = argv as [string, ...string[]];
  await runChecked(cmd, args, {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: unknown) => {
    const last = err instanceof CommandFailed ? tail(err.result) : (err as Error).message;
    throw new UserError(`\`${shown}\` failed: ${last.trim().split("\n").pop()}`, {
      exitCode: ExitCode.environment,
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `argv` under a small shell supervisor that restarts it when it exits (a crashed API service
 * comes back within a second), detached from us so it outlives this process and the CI job.
 * A previous supervisor for the same socket (pidfile) is stopped first.
 */
export async function startSupervised(step: Extract<SetupStep, { kind: "service" }>): Promise<number> {
  await mkdir(dirname(step.socket), { recursive: true });
  await stopSupervised(step.pidfile);
  await rm(step.socket, { force: true });
  const fd = openSync(step.log, "a");
  const child = await startDetached(
    "sh",
    ["-c", 'while :; do "$@"; sleep 1; done', "modelship-supervisor", ...step.argv],
    {
      logFd: fd,
      // GitHub's runner kills every process carrying its RUNNER_TRACKING_ID when the job ends.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "RUNNER_TRACKING_ID")),
    },
  ).finally(() => closeSync(fd));
  await writeFile(step.pidfile, `${child.pid}\n`);
  return child.pid;
}

/** Stops a supervisor started by startSupervised (its whole process group). */
export async function stopSupervised(pidfile: string): Promise<boolean> {
  const pid = Number((await readFile(pidfile, "utf8").catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return false;
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    process.kill(pid, "SIGTERM");
  }
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(-pid, "SIGKILL");
  await rm(pidfile, { force: true });
  return true;
}

async function waitForEngine(dockerHost: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = dockerHost.startsWith("unix://")
      ? await probeSocket(dockerHost.slice("unix://".length), 2000)
      : (await findEngine({ ...process.env, DOCKER_HOST: dockerHost }))?.server;
    if (found) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new EngineTimeout(
    `the engine did not answer at ${dockerHost} within ${Math.round(timeoutMs / 1000)}s`,
  );
}
