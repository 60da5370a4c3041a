import { describe, expect, it } from "vitest";
import { PIN_RUNNING_KEY } from "../src/router/config.js";
import { pinEntries, RouterDesired, RouterSettings, renderPinMap } from "../src/router/index.js";
import {
  adminStateOf,
  driftProblems,
  parseMapFile,
  pinMapProblems,
  planChanges,
  planPinMap,
} from "../src/router/planner.js";

describe("planner: live + desired → runtime API commands (pure)", () => {
  const settings = RouterSettings.parse({ stateDir: "/var/lib/modelship" });
  const live = (
    name: string,
    userWeight: number,
    extra: Partial<{ adminState: number; backup: boolean; port: number }> = {},
  ) => ({
    name,
    address: "127.0.0.1",
    port: extra.port ?? 9001,
    adminState: extra.adminState ?? 0,
    userWeight,
    backup: extra.backup ?? false,
  });

  it("nothing to do when live matches desired", () => {
    const plan = planChanges(
      settings,
      [live("v1", 256)],
      RouterDesired.parse({ servers: [{ name: "v1", port: 9001, weight: 100 }] }),
    );
    expect(plan).toEqual({ commands: [], leaving: [], reload: false });
  });

  it("a flip raises the gaining server before lowering the losing one", () => {
    const plan = planChanges(
      settings,
      [live("v1", 256), live("v2", 0, { port: 9002 })],
      RouterDesired.parse({
        servers: [
          { name: "v1", port: 9001, weight: 0 },
          { name: "v2", port: 9002, weight: 100 },
        ],
      }),
    );
    expect(plan.commands.map((c) => c.command)).toEqual([
      "set server models/v2 weight 256",
      "set server models/v1 weight 0",
    ]);
  });

  it("adds a new server in maintenance-first order (add, enable health, weight, state) and retires a leaving one", () => {
    const plan = planChanges(
      settings,
      [live("old", 256)],
      RouterDesired.parse({ servers: [{ name: "new", port: 9002, weight: 100 }] }),
    );
    const cmds = plan.commands.map((c) => c.command);
    expect(cmds[0]).toMatch(/^add server models\/new 127\.0\.0\.1:9002 weight 256 check /);
    expect(cmds.slice(1)).toEqual([
      "enable health models/new",
      "set server models/new weight 256",
      "set server models/new state ready",
      "set server models/old state maint",
    ]);
    expect(plan.leaving).toEqual(["old"]);
    expect(plan.commands[0]?.ok?.test("New server registered.")).toBe(true);
  });

  it("moves an address, changes admin state, and asks for a reload when the backup flag flips", () => {
    const plan = planChanges(
      settings,
      [live("v1", 256, { port: 9001 }), live("sb", 0, { backup: false, adminState: 0x01 })],
      RouterDesired.parse({
        servers: [
          { name: "v1", port: 9005, weight: 100, state: "drain" },
          { name: "sb", port: 9001, weight: 0, backup: true },
        ],
      }),
    );
    expect(plan.commands.map((c) => c.command)).toEqual([
      "set server models/sb state ready",
      "set server models/v1 addr 127.0.0.1 port 9005",
      "set server models/v1 weight 0",
      "set server models/v1 state drain",
    ]);
    expect(plan.reload).toBe(true);
  });
});

describe("planner helpers", () => {
  it("maps HAProxy admin state bits to ready / drain / maint", () => {
    expect([0, 0x01, 0x04, 0x20, 0x08, 0x10, 0x09].map(adminStateOf)).toEqual([
      "ready",
      "maint",
      "maint",
      "maint",
      "drain",
      "drain",
      "maint",
    ]);
  });

  it("reports drift between live and desired: missing, wrong weight, not desired", () => {
    const desired = RouterDesired.parse({
      servers: [
        { name: "a", port: 1, weight: 100 },
        { name: "b", port: 2, weight: 50 },
      ],
    });
    const live = [
      { name: "a", address: "127.0.0.1", port: 1, adminState: 0, userWeight: 256, backup: false },
      { name: "x", address: "127.0.0.1", port: 3, adminState: 0, userWeight: 1, backup: false },
    ];
    expect(driftProblems(live, desired)).toEqual(["b missing", "x not desired"]);
    expect(
      driftProblems([{ ...live[0]!, userWeight: 7 }], RouterDesired.parse({ servers: [desired.servers[0]] })),
    ).toEqual(["a weight 7, want 256"]);
  });

  it("pin map: reports a map that differs from the servers, and plans the commands that fix it", () => {
    const desired = RouterDesired.parse({
      servers: [
        { name: "a", port: 1, weight: 100 },
        { name: "b", port: 2, weight: 0, backup: true },
        { name: "m", port: 3, weight: 0, state: "maint" },
      ],
    });
    const wanted = pinEntries(desired);
    const file = parseMapFile(renderPinMap(desired));
    expect(file).toEqual([
      ["a", "models"],
      ["b", "models"],
      [PIN_RUNNING_KEY, '"a","b"'],
    ]);
    expect(pinMapProblems("live map", file, wanted, PIN_RUNNING_KEY)).toEqual([]);
    expect(planPinMap("/p.map", file, wanted)).toEqual({ before: [], after: [] });
    const drifted: [string, string][] = [
      ["a", "pin_shadow"],
      ["x", "models"],
      ["x", "models"],
      [PIN_RUNNING_KEY, '"a"'],
    ];
    expect(pinMapProblems("live map", drifted, wanted, PIN_RUNNING_KEY)).toEqual([
      "live map lacks b",
      "live map lists x, not a server",
      "live map sends a to pin_shadow, want models",
      "live map lists x 2 times",
      'live map 404 list is "a", want "a","b"',
    ]);
    const plan = planPinMap("/p.map", drifted, wanted);
    expect(plan.before.map((c) => c.command)).toEqual([
      "del map /p.map x",
      "set map /p.map a models",
      `set map /p.map ${PIN_RUNNING_KEY} "a","b"`,
    ]);
    expect(plan.after.map((c) => c.command)).toEqual(["add map /p.map b models"]);
    // a wanted key listed twice: every copy deleted first, one added back after
    const twice = planPinMap("/p.map", [...file, ["a", "models"]], wanted);
    expect(twice).toEqual({
      before: [{ command: "del map /p.map a" }],
      after: [{ command: "add map /p.map a models" }],
    });
    expect(pinMapProblems("f", [], new Map(), PIN_RUNNING_KEY)).toEqual([]);
  });
});
