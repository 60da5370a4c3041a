/**
 * One settings vocabulary per operation. Every setting a user can give an operation — as a CLI flag, as
 * an action input, or both — is declared once here: its key, flag, action input, default and
 * description. The commander options (src/cli/settings.ts), the actions' input helpers
 * (src/action/kit.ts `settingsInputs`) and the action.yml inputs are built from, or tested against
 * (test/settings.test.ts), these tables. Defaults are checked against the zod schemas that apply them.
 */
export interface Setting {
  /** Key of the parsed flags object (commander's attribute name for `flag`). */
  key: string;
  /** CLI flag with its value placeholder (`--interval <duration>`); null = an action input only. */
  flag: string | null;
  /** Action input name; undefined = the flag's name, null = CLI only. */
  input?: string | null;
  /** The default as a user writes it ("30s", "0.01"); undefined = none (or computed, see description). */
  default?: string;
  /** The action input's default when it differs from `default` (e.g. `wait` queues in CI). */
  actionDefault?: string;
  /** What `fast` sets instead of the default: such an input's action.yml default is empty, so `fast` applies. */
  fast?: string;
  description: string;
  /** Old flag spellings still accepted, hidden from --help. */
  deprecatedFlags?: string[];
  /** Old input names still accepted (action.yml marks them with a deprecationMessage). */
  deprecatedInputs?: string[];
  /** Commander: the flag may be given several times (collected into a list). */
  repeatable?: boolean;
  /** Commander: the flag must be given. */
  required?: boolean;
  /** Commander: parse the value as a positive number (a bad one is a one-line usage error). */
  number?: "positive";
}

export type SettingsTable = readonly Setting[];

/** `--max-p95-ms <ms>` → `max-p95-ms`. */
export function flagName(flag: string): string {
  return flag.split(/[ ,]/)[0]!.replace(/^--/, "");
}

/** `max-p95-ms` → `maxP95Ms` (commander's attribute names). */
export function camel(name: string): string {
  return name.replace(/^no-/, "").replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The action input of a setting, or null when it is CLI only. */
export function inputOf(s: Setting): string | null {
  if (s.input !== undefined) return s.input;
  return s.flag ? flagName(s.flag) : null;
}

/** The default an action.yml declares for the setting's input ("" = computed by the operation). */
export function actionDefaultOf(s: Setting): string {
  if (s.actionDefault !== undefined) return s.actionDefault;
  if (s.fast !== undefined) return "";
  return s.default ?? "";
}

/** The help text: the description plus the default (and what `--fast` uses). */
export function helpOf(s: Setting): string {
  const parts: string[] = [];
  if (s.default !== undefined) parts.push(`default ${s.default}`);
  if (s.fast !== undefined) parts.push(`${s.fast} with --fast`);
  return parts.length ? `${s.description} (${parts.join("; ")})` : s.description;
}

/** Merges tables; a key may appear once. */
export function table(...parts: SettingsTable[]): SettingsTable {
  const all = parts.flat();
  const seen = new Set<string>();
  for (const s of all) {
    if (seen.has(s.key)) throw new Error(`settings table: '${s.key}' declared twice`);
    seen.add(s.key);
  }
  return all;
}
