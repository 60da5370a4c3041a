import { existsSync } from "node:fs";
import { type HostSetupResult, setupHost } from "../../host/setup.js";
import { KNOWN_SOCKETS } from "../../host/setup-facts.js";
import type { Reporter } from "../../util/progress.js";

export { PODMAN_SOCKET } from "../../host/setup-plan.js";

/** Points DOCKER_HOST at a socket that exists when the user did not choose one. */
export function pickDockerHost(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DOCKER_HOST) return env.DOCKER_HOST;
  const sock = KNOWN_SOCKETS.find((s) => existsSync(s));
  if (sock && sock !== "/var/run/docker.sock") env.DOCKER_HOST = `unix://${sock}`;
  return env.DOCKER_HOST;
}

/**
 * Step 1 of the demo: a Docker-API engine and HAProxy, through the same set-up path as
 * `modelship host setup` / `host init --install` / `.ci/setup-host.sh` (src/host/setup.ts). As root on
 * Debian/Ubuntu the missing parts are installed and started; everywhere else the exact commands are
 * printed and the demo stops (exit 3).
 */
export async function ensureHost(reporter: Reporter, opts: { install: boolean }): Promise<HostSetupResult> {
  return setupHost(reporter, { install: opts.install });
}
