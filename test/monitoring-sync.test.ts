import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Ledger } from "../src/ledger/ledger.js";
import { monitoringPaths } from "../src/monitoring/paths.js";
import { syncTargetsIfMonitored } from "../src/monitoring/targets.js";

const dirs: string[] = [];
async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "mstest-monsync-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("Prometheus targets follow the ledger", () => {
  it("calls an operation's onChange after every ledger write, and its failure never fails the write", async () => {
    const dir = await stateDir();
    const seen: number[] = [];
    const op = await new Ledger(dir).begin("repair", {
      onChange: async (l) => {
        seen.push(l.history.length);
        throw new Error("monitoring is down");
      },
    });
    await op.event({ kind: "repair", reason: "first" });
    await op.finish();
    expect(seen.length).toBeGreaterThanOrEqual(3); // init, event, finish
    expect(seen[1]).toBe((seen[0] ?? 0) + 1);
    const ledger = await new Ledger(dir).read();
    expect(ledger.operation).toBeNull();
  });

  it("does nothing on a host without monitoring and rewrites models.json where it is set up", async () => {
    const dir = await stateDir();
    await new Ledger(dir).begin("repair").then((op) => op.finish());
    await syncTargetsIfMonitored(dir);
    expect(existsSync(monitoringPaths(dir).targetsDir)).toBe(false);

    await mkdir(monitoringPaths(dir).targetsDir, { recursive: true });
    await syncTargetsIfMonitored(dir);
    const written = JSON.parse(await readFile(monitoringPaths(dir).modelTargets, "utf8"));
    expect(written).toEqual([]); // empty ledger → no model targets, but a valid file_sd list
  });
});
