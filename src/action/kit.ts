import * as core from "@actions/core";
import type { z } from "zod";
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
