import { type Command, InvalidArgumentError, Option } from "commander";
import { camel, flagName, helpOf, type SettingsTable } from "../settings/table.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

/** Adds a settings table's flags to a command (deprecated spellings hidden from --help). */
export function addSettings(cmd: Command, settings: SettingsTable): Command {
  for (const s of settings) {
    if (!s.flag) continue;
    const option = new Option(s.flag, helpOf(s));
    if (s.repeatable) option.argParser(collect);
    if (s.required) option.makeOptionMandatory();
    if (s.number === "positive") option.argParser(positive);
    cmd.addOption(option);
    for (const old of s.deprecatedFlags ?? [])
      cmd.addOption(new Option(old, `deprecated spelling of --${flagName(s.flag)}`).hideHelp());
  }
  return cmd;
}

/** Parsed options with every deprecated spelling folded into its setting's key. */
export function foldDeprecated<T extends object>(flags: T, settings: SettingsTable): T {
  const out = { ...flags } as Record<string, unknown>;
  for (const s of settings) {
    for (const old of s.deprecatedFlags ?? []) {
      const key = camel(flagName(old));
      if (out[key] !== undefined && out[s.key] === undefined) out[s.key] = out[key];
      delete out[key];
    }
  }
  return out as T;
}
