import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeHeal, type HealPolicy, planHeal, recentRestarts } from "../src/host/heal.js";
import { modelshipBin, renderHealUnits } from "../src/host/watch.js";
import { emptyLedger, type LedgerData, type VersionEntry } from "../src/ledger/schema.js";

/** The self-healing decision: ledger + what the engine says → start / recreate / give up. Pure. */

const T0 = Date.parse("2026-11-28T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

function version(v: string, role: VersionEntry["role"], port: number, withContainer = true): VersionEntry {
  return {
    version: v,
    image: { ref: `localhost/model:${v}`, digest: null },
    model: null,
    container: withContainer ? { id: `id-${v}`, name: `ms-${v}`, hostPort: port } : null,
    role,
    weight: role === "stable" ? 100 : 0,
    createdAt: iso(T0),
    updatedAt: iso(T0),
    analysis: [],
  };
}

function ledger(...versions: VersionEntry[]): LedgerData {
  return { ...emptyLedger(new Date(T0)), versions };
}

const policy: HealPolicy = { maxRestarts: 3, windowMs: 10 * 60_000 };

describe("planHeal", () => {
  const l = ledger(
    version("v1", "standby", 4001),
    version("v2", "stable", 4002),
    version("v3", "canary", 4003),
    version("v0", "retired", 4000, false),
    version("vf", "failed", 4009),
  );

  it("everything running (or being restarted by the engine): nothing to do", () => {
    expect(
      planHeal(
        l,
        { "ms-v1": "running", "ms-v2": "restarting", "ms-v3": "running", "ms-vf": "stopped" },
        T0,
        policy,
      ),
    ).toEqual([]);
  });

  it("stopped → start it; gone → recreate from the recorded image and port; stable first, then standby, then canary", () => {
    const plan = planHeal(l, { "ms-v1": "missing", "ms-v2": "stopped", "ms-v3": "stopped" }, T0, policy);
    expect(plan.map((a) => [a.kind, a.version])).toEqual([
      ["start", "v2"],
      ["recreate", "v1"],
      ["start", "v3"],
    ]);
    expect(plan[1]).toMatchObject({
      image: "localhost/model:v1",
      container: { name: "ms-v1", hostPort: 4001 },
    });
  });

  it("a container the engine does not know at all counts as gone", () => {
    expect(planHeal(ledger(version("v2", "stable", 4002)), {}, T0, policy)).toMatchObject([
      { kind: "recreate" },
    ]);
  });

  it("retired and failed versions are never brought back", () => {
    expect(
      planHeal(ledger(version("vf", "failed", 4009), version("vr", "retired", 4008)), {}, T0, policy),
    ).toEqual([]);
  });

  it("rate limit: the (maxRestarts)th restart inside the window is the last; then it is reported, not restarted", () => {
    const restarts = (n: number, ageMs: number) =>
      Array.from({ length: n }, (_, i) => ({
        at: iso(T0 - ageMs - i * 1000),
        kind: "restart" as const,
        version: "v2",
      }));
    const withHistory = (h: LedgerData["history"]) => ({
      ...ledger(version("v2", "stable", 4002)),
      history: h,
    });
    const stopped = { "ms-v2": "stopped" as const };

    expect(planHeal(withHistory(restarts(2, 60_000)), stopped, T0, policy)).toMatchObject([
      { kind: "start", restarts: 2 },
    ]);
    const gaveUp = planHeal(withHistory(restarts(3, 60_000)), stopped, T0, policy);
    expect(gaveUp).toMatchObject([{ kind: "give-up", version: "v2", restarts: 3, state: "stopped" }]);
    expect(describeHeal(gaveUp[0]!, policy)).toMatch(
      /keeps dying: 3 restarts in the last 10 min, not restarting/,
    );
    // Old restarts fall out of the window; other versions' restarts do not count.
    expect(planHeal(withHistory(restarts(3, 11 * 60_000)), stopped, T0, policy)).toMatchObject([
      { kind: "start" },
    ]);
    const others = restarts(5, 0).map((e) => ({ ...e, version: "v1" }));
    expect(recentRestarts(withHistory(others), "v2", T0, policy)).toBe(0);
  });

  it("a version without a recorded container (nothing was started) is not invented", () => {
    expect(planHeal(ledger(version("v2", "stable", 4002, false)), {}, T0, policy)).toEqual([]);
  });
});

describe("renderHealUnits", () => {
  it("a oneshot `host watch --once` and a timer that also fires after boot", () => {
    const u = renderHealUnits({
      stateDir: "/var/lib/modelship",
      intervalSec: 30,
      node: "/usr/bin/node",
      bin: "/opt/modelship/bin/modelship.js",
      dockerHost: "unix:///run/modelship/podman.sock",
    });
    expect(u.service).toContain(
      "ExecStart=/usr/bin/node /opt/modelship/bin/modelship.js host watch --once --state-dir /var/lib/modelship",
    );
    expect(u.service).toContain('Environment="DOCKER_HOST=unix:///run/modelship/podman.sock"');
    expect(u.timer).toMatch(/OnBootSec=20s\nOnUnitActiveSec=30s/);
  });

  it.runIf(spawnSync("sh", ["-c", "command -v systemd-analyze"]).status === 0)(
    "systemd-analyze verify accepts both units (and would reject a broken one)",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "mstest-heal-units-"));
      try {
        const u = renderHealUnits({
          stateDir: dir,
          intervalSec: 30,
          node: process.execPath,
          bin: modelshipBin(),
        });
        writeFileSync(join(dir, "modelship-heal.service"), u.service);
        writeFileSync(join(dir, "modelship-heal.timer"), u.timer);
        const ok = spawnSync(
          "systemd-analyze",
          ["verify", join(dir, "modelship-heal.timer"), join(dir, "modelship-heal.service")],
          {
            encoding: "utf8",
          },
        );
        expect(ok.stderr).toBe("");
        expect(ok.status).toBe(0);
        writeFileSync(
          join(dir, "modelship-heal.service"),
          u.service.replace("Type=oneshot", "Type=oneshoot"),
        );
        const bad = spawnSync("systemd-analyze", ["verify", join(dir, "modelship-heal.service")], {
          encoding: "utf8",
        });
        expect(bad.stderr).toMatch(/oneshoot/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
