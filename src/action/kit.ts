import { existsSync } from "node:fs";
import { join } from "node:path";
import * as core from "@actions/core";
import { z } from "zod";
import { CONFIG_FILE } from "../config/schema.js";
import { inputOf, type SettingsTable } from "../settings/table.js";
import { describeError, isUserError, UserError } from "../util/errors.js";

/**
 * Shared shape of every modelship action (after actions/checkout's input-helper + thin main):
 * raw inputs → one zod-validated settings object → domain call → outputs + job summary.
 * Failures become one readable `core.setFailed` line, never a stack trace.
 */
export async function runAction(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const debug = core.isDebug();
    core.setFailed(describeError(err, debug));
    if (!isUserError(err) && err instanceof Error && err.stack) core.debug(err.stack);
  }
}

/** Reads the named inputs (empty string = not given) and validates them as one settings object. */
export function readInputs<S extends z.ZodType>(schema: S, names: readonly string[]): z.infer<S> {
  const raw: Record<string, string | undefined> = {};
  for (const name of names) {
    const value = core.getInput(name);
    raw[name] = value === "" ? undefined : value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `input '${i.path.join(".") || "?"}': ${i.message}`);
    throw new InputError(issues.join("; "));
  }
  return parsed.data;
}

export class InputError extends UserError {
  override name = "InputError";
}

/** Sets many outputs at once; objects are JSON-encoded. */
export function setOutputs(outputs: Record<string, string | number | boolean | object | undefined>): void {
  for (const [key, value] of Object.entries(outputs)) {
    if (value === undefined) continue;
    core.setOutput(key, typeof value === "object" ? JSON.stringify(value) : String(value));
  }
}

/** The action inputs of a settings table (src/settings/), old names included, in table order. */
export function settingInputNames(settings: SettingsTable): string[] {
  return settings.flatMap((s) => {
    const input = inputOf(s);
    return input ? [input, ...(s.deprecatedInputs ?? [])] : [];
  });
}

/** Validated inputs (by input name) → the operation's flags (by setting key), old input names folded in. */
export function flagsFromInputs<T extends object>(
  inputs: Record<string, unknown>,
  settings: SettingsTable,
): T {
  const flags: Record<string, unknown> = {};
  for (const s of settings) {
    const input = inputOf(s);
    if (!input) continue;
    // An old name has no default, so a value there was given on purpose: it wins over the new name's default.
    const value = [...(s.deprecatedInputs ?? []), input].map((n) => inputs[n]).find((v) => v !== undefined);
    if (value !== undefined) flags[s.key] = value;
  }
  return flags as T;
}

/** A boolean input as the runner passes it ("true"/"false" in any case; empty = the fallback). */
export const boolInput = (fallback: boolean) =>
  z
    .enum(["true", "false", "True", "False", "TRUE", "FALSE"], { message: "expected true or false" })
    .optional()
    .transform((v) => (v === undefined ? fallback : v.toLowerCase() === "true"));

/** The modelship.yaml an action reads: the input if given, else the workspace's own file if there is one. */
export function workspaceConfig(given: string | undefined): string | undefined {
  if (given) return given;
  const path = join(process.env.GITHUB_WORKSPACE ?? process.cwd(), CONFIG_FILE);
  return existsSync(path) ? path : undefined;
}
