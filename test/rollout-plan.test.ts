import { describe, expect, it } from "vitest";
import { emptyLedger, type LedgerData, type Operation, type VersionEntry } from "../src/ledger/schema.js";
import { type HostView, pastCommit, planRepair, weightsFromLedger } from "../src/rollout/plan.js";
import type { LiveContainer, LiveServer } from "../src/rollout/ports.js";

/** The repair planner is pure: ledger + live host → steps. Each fault of issue 10 is one case here. */
const NOW = Date.parse("2026-11-28T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();
const SHA = "a".repeat(64);

function entry(version: string, role: VersionEntry["role"], port: number, extra: Partial<VersionEntry> = {}) {
  return {
    version,
    image: { ref: `img:${version}`, digest: null },
    model: { name: "m", version, sha256: SHA },
    container:
      role === "retired" || role === "failed"
        ? null
        : { id: `id-${version}`, name: `c-${version}`, hostPort: port },
    role,
    weight: role === "stable" ? 100 : 0,
    createdAt: iso(NOW - 3600_000),
    updatedAt: iso(NOW - 3600_000),
    analysis: [],
    ...extra,
  } satisfies VersionEntry;
}
const ledgerOf = (...versions: VersionEntry[]): LedgerData => ({ ...emptyLedger(new Date(NOW)), versions });
const container = (version: string, port: number, running = true): LiveContainer => ({
  id: `id-${version}`,
  name: `c-${version}`,
  running,
  hostPort: port,
  image: `img:${version}`,
  model: { name: "m", version, sha256: SHA },
});
const server = (name: string, port: number, extra: Partial<LiveServer> = {}): LiveServer => ({
  name,
  port,
  weight: 100,
  backup: false,
  state: "ready",
  up: true,
  ...extra,
});
const host = (containers: LiveContainer[], servers: LiveServer[]): HostView => ({
  containers,
  servers,
  now: NOW,
});
const opts = { interrupted: null, standbyWindowMs: 3600_000 };
const kinds = (steps: { do: string }[]) => steps.map((s) => s.do);

describe("repair planner", () => {
  it("a healthy host needs nothing but the (no-op) routing step", () => {
    const l = ledgerOf(entry("v1", "stable", 1001));
    expect(kinds(planRepair(l, host([container("v1", 1001)], [server("v1", 1001)]), opts))).toEqual([
      "route-to-stable",
    ]);
  });

  it("item 5: an empty ledger with a serving edge is rebuilt from the containers, never emptied", () => {
    const h = host(
      [container("v1", 1001), container("v2", 1002)],
      [server("v2", 1002), server("v1", 1001, { backup: true, weight: 100 })],
    );
    const steps = planRepair(emptyLedger(new Date(NOW)), h, opts);
    expect(kinds(steps)).not.toContain("detach");
    expect(kinds(steps)).not.toContain("remove-container");
    const adopt = steps[0];
    expect(adopt?.do).toBe("adopt");
    if (adopt?.do !== "adopt") return;
    expect(adopt.entries.map((e) => [e.version, e.role, e.container?.hostPort])).toEqual([
      ["v2", "stable", 1002],
      ["v1", "standby", 1001],
    ]);
    expect(adopt.entries[1]?.standbyUntil).toBe(iso(NOW + 3600_000));
  });

  it("item 5: an edge routing to something no container of this state dir runs → refuse (change nothing)", () => {
    const steps = planRepair(emptyLedger(), host([], [server("v1", 1001)]), opts);
    expect(kinds(steps)).toEqual(["refuse"]);
    // a routed server that is down serves nobody: it goes, as do containers nothing routes to
    const down = planRepair(
      emptyLedger(),
      host([container("v9", 1009)], [server("v1", 1001, { up: false })]),
      opts,
    );
    expect(kinds(down)).toEqual(["detach", "remove-container"]);
  });

  it("item 6: an expired standby is kept while the stable is down (the last healthy server)", () => {
    const l = ledgerOf(
      entry("v2", "stable", 1002),
      entry("v1", "standby", 1001, { standbyUntil: iso(NOW - 1000) }),
    );
    const h = host(
      [container("v2", 1002, false), container("v1", 1001)],
      [server("v2", 1002, { up: false }), server("v1", 1001, { backup: true })],
    );
    const steps = planRepair(l, h, opts);
    expect(kinds(steps)).not.toContain("retire-standby");
    const warnings = steps.filter((s) => s.do === "warn").map((s) => (s.do === "warn" ? s.fix : ""));
    expect(warnings).toContain('modelship rollback --to v1 --reason "stable down"');
    // with the stable back up, the same expired standby is retired
    const ok = planRepair(
      l,
      host(
        [container("v2", 1002), container("v1", 1001)],
        [server("v2", 1002), server("v1", 1001, { backup: true })],
      ),
      opts,
    );
    expect(ok.find((s) => s.do === "retire-standby")).toMatchObject({ version: "v1" });
  });

  it("a standby the engine does not list (engine restarting) but HAProxy sees UP is kept while nothing else serves", () => {
    const l = ledgerOf(entry("v2", "stable", 1002), entry("v1", "standby", 1001));
    // an engine coming back up can list no containers at all for a moment
    const blind = host([], [server("v2", 1002, { up: false }), server("v1", 1001, { backup: true })]);
    const steps = planRepair(l, blind, opts);
    expect(kinds(steps)).not.toContain("retire-standby");
    expect(kinds(steps)).not.toContain("detach");
    expect(steps.find((s) => s.do === "warn")).toMatchObject({
      message: expect.stringMatching(/standby v1 .* kept/),
    });
    // with the stable serving, a standby whose container is really gone is retired as before
    const gone = host(
      [container("v2", 1002)],
      [server("v2", 1002), server("v1", 1001, { backup: true, up: false })],
    );
    expect(planRepair(l, gone, opts).find((s) => s.do === "retire-standby")).toMatchObject({ version: "v1" });
  });

  it("item 8: an orphan container of a crashed cold rollback is removed; a detached standby is re-attached", () => {
    const interrupted: Operation = {
      id: "rollback-1",
      kind: "rollback",
      pid: 4242,
      host: "h",
      startedAt: iso(NOW - 5000),
      step: "starting container c-v0",
      phase: { name: "starting", version: "v0", container: "c-v0" },
      target: "v0",
    };
    const l = ledgerOf(
      entry("v2", "stable", 1002),
      entry("v1", "standby", 1001, { standbyUntil: iso(NOW + 1000) }),
      entry("v0", "retired", 0),
    );
    const h = host(
      [container("v2", 1002), container("v1", 1001), container("v0", 1000)],
      [server("v2", 1002)],
    );
    const steps = planRepair(l, h, { ...opts, interrupted });
    expect(steps[0]).toMatchObject({ do: "note" });
    expect(steps).toContainEqual(
      expect.objectContaining({ do: "remove-container", container: { id: "id-v0", name: "c-v0" } }),
    );
    expect(steps).toContainEqual({ do: "reattach-standby", version: "v1", port: 1001 });
    expect(steps.at(-1)).toMatchObject({ do: "route-to-stable", version: "v2", standbys: ["v1"] });
  });

  it("a retired version that still has a container (crash after it was recorded) is unwound", () => {
    const l = ledgerOf(entry("v2", "stable", 1002), {
      ...entry("v0", "retired", 0),
      container: { id: "id-v0", name: "c-v0", hostPort: 1000 },
    });
    const h = host(
      [container("v2", 1002), container("v0", 1000)],
      [server("v2", 1002), server("v0", 1000, { backup: true })],
    );
    const steps = planRepair(l, h, opts);
    expect(steps).toContainEqual(expect.objectContaining({ do: "unwind", version: "v0", role: "retired" }));
  });

  it("an unfinished canary is unwound; when it is the only healthy server it is kept with a warning", () => {
    const l = ledgerOf(
      entry("v1", "stable", 1001, { weight: 75 }),
      entry("v2", "canary", 1002, { weight: 25 }),
    );
    const healthy = host(
      [container("v1", 1001), container("v2", 1002)],
      [server("v1", 1001), server("v2", 1002)],
    );
    expect(planRepair(l, healthy, opts)[0]).toMatchObject({ do: "unwind", version: "v2", role: "failed" });
    const stableDown = host(
      [container("v1", 1001, false), container("v2", 1002)],
      [server("v1", 1001, { up: false }), server("v2", 1002)],
    );
    const steps = planRepair(l, stableDown, opts);
    expect(kinds(steps)).not.toContain("unwind");
    expect(kinds(steps)).toContain("warn");
  });

  it("a server unknown to the ledger is detached, unless it is the last healthy one", () => {
    const l = ledgerOf(entry("v1", "stable", 1001));
    expect(
      planRepair(l, host([container("v1", 1001)], [server("v1", 1001), server("x", 1009)]), opts),
    ).toContainEqual(expect.objectContaining({ do: "detach", name: "x" }));
    const steps = planRepair(
      l,
      host([container("v1", 1001, false)], [server("v1", 1001, { up: false }), server("x", 1009)]),
      opts,
    );
    expect(kinds(steps)).not.toContain("detach");
  });

  it("resume vs unwind: past the switch the interrupted deploy is finished, before it unwound", () => {
    const op = (phase: Operation["phase"]): Operation => ({
      id: "d",
      kind: "deploy",
      pid: 1,
      host: "h",
      startedAt: iso(NOW),
      step: "x",
      phase,
    });
    const l = ledgerOf(
      entry("v2", "stable", 1002),
      entry("v1", "standby", 1001, { standbyUntil: iso(NOW + 1) }),
    );
    expect(pastCommit(op({ name: "draining", version: "v1" }), l)).toBe(true);
    expect(pastCommit(op({ name: "switching", version: "v2", from: "v1" }), l)).toBe(true);
    expect(pastCommit(op({ name: "switching", version: "v3", from: "v2" }), l)).toBe(false);
    expect(pastCommit(op({ name: "canary", version: "v3", step: 0, weight: 5 }), l)).toBe(false);
  });

  it("router weights are derived from the ledger", () => {
    const l = ledgerOf(
      entry("v1", "stable", 1001, { weight: 75 }),
      entry("v2", "canary", 1002, { weight: 25 }),
      entry("v0", "standby", 1000),
    );
    expect(weightsFromLedger(l)).toEqual({ v1: 75, v2: 25 });
    expect(weightsFromLedger(l, { standbys: true })).toEqual({ v1: 75, v2: 25, v0: 0 });
  });
});
