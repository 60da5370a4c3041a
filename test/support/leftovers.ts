import { readdir, readFile } from "node:fs/promises";

/**
 * Every process the suite starts outside a container (HAProxy, Prometheus, the CLI) inherits
 * MODELSHIP_TEST_RUN from the global setup. These helpers find them through /proc, so a test can stop
 * everything that belongs to its state dir, and the global teardown can prove nothing was left behind.
 */
export const TEST_RUN_VAR = "MODELSHIP_TEST_RUN";

export interface HostProcess {
  pid: number;
  cmdline: string;
}

async function processes(): Promise<{ pid: number; cmdline: string; environ: string }[]> {
  const out: { pid: number; cmdline: string; environ: string }[] = [];
  for (const entry of await readdir("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ").trim();
      const environ = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
      if (cmdline) out.push({ pid, cmdline, environ });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** HAProxy / Prometheus processes started by this test run (its MODELSHIP_TEST_RUN value). */
export async function leftoverDaemons(run: string): Promise<HostProcess[]> {
  const marker = `${TEST_RUN_VAR}=${run}\0`;
  return (await processes())
    .filter(
      (p) =>
        p.environ.includes(marker) && /(^|\/)(haproxy|prometheus)( |$)/.test(p.cmdline.split(" ")[0] ?? ""),
    )
    .map(({ pid, cmdline }) => ({ pid, cmdline }));
}

/**
 * Kills (SIGKILL) every HAProxy / Prometheus whose command line names `stateDir`: what a test started
 * for that state dir, however it got there (daemon, reload leftover, a child CLI). For afterAll hooks.
 */
export async function killDaemonsOf(stateDir: string): Promise<number[]> {
  const killed: number[] = [];
  for (const p of await processes()) {
    const bin = p.cmdline.split(" ")[0] ?? "";
    if (!/(^|\/)(haproxy|prometheus)$/.test(bin) || !p.cmdline.includes(stateDir)) continue;
    try {
      process.kill(p.pid, "SIGKILL");
      killed.push(p.pid);
    } catch {
      // already gone
    }
  }
  return killed;
}
