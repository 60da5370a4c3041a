import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command, Option } from "commander";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import * as buildInputs from "../actions/build-image/input-helper.js";
import * as canaryInputs from "../actions/canary-deploy/input-helper.js";
import * as driftInputs from "../actions/check-drift/input-helper.js";
import * as gateInputs from "../actions/gate-on-metrics/input-helper.js";
import * as rollbackInputs from "../actions/rollback/input-helper.js";
import * as trainInputs from "../actions/train-and-validate/input-helper.js";
import { flagsFromInputs, settingInputNames } from "../src/action/kit.js";
import { analysisConfigSchema } from "../src/analysis/analysis.js";
import { buildProgram } from "../src/cli/main.js";
import { foldDeprecated } from "../src/cli/settings.js";
import { gatePolicySchema } from "../src/config/gate.js";
import { DEFAULT_LIMITS } from "../src/config/train.js";
import { type RolloutFlags, settingsFromFlags } from "../src/rollout/options.js";
import { BUILD_SETTINGS } from "../src/settings/build.js";
import {
  DEMO_SETTINGS,
  DRIFT_SETTINGS,
  GATE_SETTINGS,
  HOST_CHECK_SETTINGS,
  HOST_INIT_SETTINGS,
  HOST_REPAIR_SETTINGS,
  HOST_SETUP_SETTINGS,
  HOST_WATCH_SETTINGS,
  PACKAGE_SETTINGS,
  SERVE_SETTINGS,
  STATUS_SETTINGS,
  TRAIN_SETTINGS,
  VALIDATE_SETTINGS,
} from "../src/settings/commands.js";
import { DEPLOY_SETTINGS, ROLLBACK_SETTINGS } from "../src/settings/rollout.js";
import { actionDefaultOf, camel, flagName, inputOf, type SettingsTable } from "../src/settings/table.js";
import { CHECK_LIMIT_SETTINGS } from "../src/settings/validate.js";
import { repoRoot } from "./support/data.js";

/**
 * One settings vocabulary per operation (src/settings/): every CLI flag of the command and every input of
 * its action.yml is a row of the operation's table, with the table's name and default; the table's
 * defaults are the ones the zod schemas apply.
 */

interface ActionYml {
  inputs: Record<string, { default?: string; required?: boolean; deprecationMessage?: string }>;
}

const OPERATIONS: Array<{
  command: string;
  action: string;
  table: SettingsTable;
  helper: { INPUT_NAMES: readonly string[]; inputsSchema: unknown };
  rollout?: boolean;
}> = [
  { command: "deploy", action: "canary-deploy", table: DEPLOY_SETTINGS, helper: canaryInputs, rollout: true },
  {
    command: "rollback",
    action: "rollback",
    table: ROLLBACK_SETTINGS,
    helper: rollbackInputs,
    rollout: true,
  },
  { command: "build", action: "build-image", table: BUILD_SETTINGS, helper: buildInputs },
  { command: "gate", action: "gate-on-metrics", table: GATE_SETTINGS, helper: gateInputs },
  { command: "drift", action: "check-drift", table: DRIFT_SETTINGS, helper: driftInputs },
  { command: "train", action: "train-and-validate", table: TRAIN_SETTINGS, helper: trainInputs },
];

/** Commands without an action: their flags only. */
const CLI_ONLY: Array<{ command: string; table: SettingsTable }> = [
  { command: "validate", table: VALIDATE_SETTINGS },
  { command: "package", table: PACKAGE_SETTINGS },
  { command: "serve", table: SERVE_SETTINGS },
  { command: "status", table: STATUS_SETTINGS },
  { command: "demo", table: DEMO_SETTINGS },
  { command: "host setup", table: HOST_SETUP_SETTINGS },
  { command: "host init", table: HOST_INIT_SETTINGS },
  { command: "host check", table: HOST_CHECK_SETTINGS },
  { command: "host repair", table: HOST_REPAIR_SETTINGS },
  { command: "host watch", table: HOST_WATCH_SETTINGS },
];

const program = buildProgram();
const commandOf = (path: string) =>
  path.split(" ").reduce<Command>((c, name) => c.commands.find((s) => s.name() === name) as Command, program);
const actionYml = (name: string) =>
  parseYaml(readFileSync(join(repoRoot, "actions", name, "action.yml"), "utf8")) as ActionYml;
const optionsOf = (cmd: Command) => (cmd as unknown as { options: Option[] }).options;
const shapeKeys = (schema: unknown) => {
  let s = schema as { shape?: Record<string, unknown>; def?: { in?: unknown; schema?: unknown } };
  while (!s.shape && s.def) s = (s.def.in ?? s.def.schema) as typeof s;
  return Object.keys(s.shape ?? {});
};

/** The command's options are exactly the table's flags: names, commander attribute = key, defaults. */
function expectFlagsMatch(command: string, table: SettingsTable): void {
  const options = optionsOf(commandOf(command));
  const rows = new Map<string, { key: string; deprecated: boolean; default?: string }>();
  for (const s of table) {
    if (!s.flag) continue;
    rows.set(flagName(s.flag), { key: s.key, deprecated: false, default: s.default });
    for (const old of s.deprecatedFlags ?? []) rows.set(flagName(old), { key: s.key, deprecated: true });
  }
  expect(options.map((o) => o.long!.replace(/^--/, "")).sort(), command).toEqual([...rows.keys()].sort());
  for (const o of options) {
    const row = rows.get(o.long!.replace(/^--/, ""))!;
    expect(o.hidden, o.long).toBe(row.deprecated);
    if (!row.deprecated) expect(o.attributeName(), o.long).toBe(row.key);
    else expect(o.attributeName()).toBe(camel(flagName(o.long!)));
    // A commander default is the table's; a default applied later is the one --help states.
    if (o.defaultValue !== undefined)
      expect(String(o.defaultValue), `${command} ${o.long}`).toBe(row.default);
    else if (row.default !== undefined && !o.negate)
      expect(o.description, `${command} ${o.long} states its default`).toMatch(
        new RegExp(`default:? ${row.default.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=[\\s,;)]|$)`),
      );
  }
}

describe.each(CLI_ONLY)("settings of $command", ({ command, table }) => {
  it("every CLI flag is a row of the table (key = commander's attribute, same default)", () =>
    expectFlagsMatch(command, table));
});

describe.each(OPERATIONS)(
  "settings of $command / actions/$action",
  ({ command, action, table, helper, rollout }) => {
    it("every action.yml input is a row of the table, with the table's default", () => {
      const yml = actionYml(action);
      const expected = new Map<string, string>();
      for (const s of table) {
        const input = inputOf(s);
        if (!input) continue;
        expected.set(input, actionDefaultOf(s));
        for (const old of s.deprecatedInputs ?? []) expected.set(old, "");
      }
      expect(Object.keys(yml.inputs).sort()).toEqual([...expected.keys()].sort());
      for (const [name, spec] of Object.entries(yml.inputs)) {
        if (spec.required) expect(spec.default, name).toBeUndefined();
        else expect(`${spec.default}`, `${action}.inputs.${name} default`).toBe(expected.get(name));
      }
      for (const s of table)
        for (const old of s.deprecatedInputs ?? [])
          expect(yml.inputs[old]?.deprecationMessage, old).toBeTruthy();
    });

    it("the action's input helper reads exactly the table's inputs", () => {
      expect([...helper.INPUT_NAMES]).toEqual(settingInputNames(table));
      expect(shapeKeys(helper.inputsSchema).sort()).toEqual([...settingInputNames(table)].sort());
    });

    it("every CLI flag is a row of the table (key = commander's attribute, same default), old spellings hidden", () =>
      expectFlagsMatch(command, table));

    it.runIf(rollout)("the table's defaults are the ones the rollout settings apply", () => {
      const none = settingsFromFlags({});
      for (const s of table) {
        if (s.default === undefined || !s.flag) continue;
        const given = settingsFromFlags({ [s.key]: s.default } as RolloutFlags);
        expect(given, `${s.flag} default ${s.default}`).toEqual(none);
      }
    });
  },
);

describe("the two defects the tables remove", () => {
  it("canary-deploy: `fast: true` shortens the interval (action.yml no longer pins 30s)", () => {
    const yml = actionYml("canary-deploy");
    // What the runner passes: every action.yml default, then the workflow's own inputs.
    const defaults = Object.fromEntries(
      Object.entries(yml.inputs)
        .filter(
          ([, spec]) => spec.default !== undefined && spec.default !== "" && !spec.default.includes("${{"),
        )
        .map(([k, spec]) => [k, spec.default]),
    );
    const parse = (given: Record<string, string>) => {
      const inputs = (canaryInputs.inputsSchema as { parse: (v: unknown) => Record<string, unknown> }).parse({
        ...defaults,
        image: "localhost/x:1",
        ...given,
      });
      return settingsFromFlags(flagsFromInputs<RolloutFlags>(inputs, DEPLOY_SETTINGS));
    };
    expect(parse({}).intervalMs).toBe(30_000);
    expect(parse({ fast: "true" }).intervalMs).toBe(4000);
    expect(parse({ fast: "true", interval: "10s" }).intervalMs).toBe(10_000);
    // The old input name still works.
    expect(parse({ "max-p95": "300" }).analysis.maxP95Ms).toBe(300);
    expect(parse({ "max-p95-ms": "400" }).analysis.maxP95Ms).toBe(400);
    // The shadow step is off unless asked for (input `shadow` = `deploy --shadow`).
    expect(parse({}).shadowMs).toBe(0);
    expect(parse({ shadow: "30s" }).shadowMs).toBe(30_000);
    expect(() => parse({ shadow: "soon" })).toThrow(/^--shadow: not a duration: 'soon'/);
  });

  it("deploy --help states the analysis' own latency slack", () => {
    const { latencySlackMs } = analysisConfigSchema.parse({});
    const help = commandOf("deploy").helpInformation();
    const line = help.split("\n").find((l) => l.includes("--latency-factor"));
    expect(line).toContain(`+ ${latencySlackMs} ms`);
    expect(help).not.toMatch(/\+5 ms/);
    expect(help).not.toMatch(/--max-p95 </);
  });

  it("deploy --max-p95 (old spelling) still sets the p95 limit", () => {
    const cmd = buildProgram().commands.find((c) => c.name() === "deploy")!;
    cmd.parseOptions(["--max-p95", "321", "--max-p99-ms", "654"]);
    const flags = foldDeprecated(cmd.opts() as RolloutFlags, DEPLOY_SETTINGS);
    const settings = settingsFromFlags(flags);
    expect(settings.analysis.maxP95Ms).toBe(321);
    expect(settings.analysis.maxP99Ms).toBe(654);
  });
});

describe("same words for the same thing", () => {
  it("build takes --repository like deploy (--image stays as a hidden old spelling)", () => {
    const cmd = buildProgram().commands.find((c) => c.name() === "build")!;
    cmd.parseOptions(["--model", "m", "--image", "ghcr.io/acme/x"]);
    expect(foldDeprecated(cmd.opts(), BUILD_SETTINGS)).toMatchObject({ repository: "ghcr.io/acme/x" });
    expect(cmd.helpInformation()).toMatch(/--repository <repo>/);
    expect(cmd.helpInformation()).not.toMatch(/--image </);
  });

  it("gate.runtime.maxSizeMb is spelt like validate.maxSizeMb; the old maxSizeMB still applies", () => {
    expect(gatePolicySchema.parse({}).runtime.maxSizeMb).toBe(500);
    expect(gatePolicySchema.parse({ runtime: { maxSizeMB: 20 } }).runtime.maxSizeMB).toBe(20);
  });
});

describe("the production-checklist limits (train, validate, actions/train-and-validate)", () => {
  it("train and validate take the table's --max-* flags; the action its inputs with empty defaults", () => {
    const yml = actionYml("train-and-validate");
    for (const s of CHECK_LIMIT_SETTINGS) {
      const input = inputOf(s)!;
      expect(yml.inputs[input], input).toBeDefined();
      expect(yml.inputs[input]!.default).toBe(actionDefaultOf(s));
      for (const command of ["train", "validate"]) {
        const option = optionsOf(commandOf(command)).find((o) => o.long === `--${flagName(s.flag!)}`);
        expect(option?.attributeName(), `${command} ${s.flag}`).toBe(s.key);
        expect(option?.description).toContain(`default ${s.default}`);
      }
      // The key is modelship.yaml's validate: key, and the default is the one it applies.
      expect(String(DEFAULT_LIMITS[s.key as keyof typeof DEFAULT_LIMITS])).toBe(s.default);
    }
  });
});
