import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { ZodType, z } from "zod";
import { UserError } from "../util/errors.js";
import { deployConfigSchema } from "./deploy.js";
import { driftPolicySchema } from "./drift.js";
import { gatePolicySchema } from "./gate.js";
import type { PackageFlags, PackageSettings } from "./package.js";
import { CONFIG_FILE, configSchema, type ModelshipConfig } from "./schema.js";
import { resolveTrainSettings, type TrainFlags, type TrainSettings } from "./train.js";

export interface LoadedConfig {
  config: ModelshipConfig;
  /** The file read, or undefined when none was given. */
  path: string | undefined;
  /** Resolves a path written in the config file (relative to the file's folder). */
  resolvePath(p: string): string;
}

/** Reads and validates modelship.yaml; no path → an empty config (flags and defaults only). */
export async function loadConfig(path: string | undefined): Promise<LoadedConfig> {
  if (!path) return { config: {}, path: undefined, resolvePath: (p) => resolve(p) };
  const config = parseConfigText(await readText(path, "config"), path);
  const base = dirname(resolve(path));
  return { config, path, resolvePath: (p) => (isAbsolute(p) ? p : resolve(base, p)) };
}

export function parseConfigText(text: string, where: string): ModelshipConfig {
  const value = parseYamlText(text, where) ?? {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new UserError(`${where} must be a YAML mapping with sections such as train:, validate:`);
  }
  return parseWith(configSchema, value, where);
}

/** The sections a tool can also take from a standalone file (`--policy FILE`: the keys without the section). */
const POLICY_SCHEMAS = {
  gate: gatePolicySchema,
  drift: driftPolicySchema,
  deploy: deployConfigSchema,
} as const;
export type PolicySection = keyof typeof POLICY_SCHEMAS;
export type Policy<K extends PolicySection> = z.infer<(typeof POLICY_SCHEMAS)[K]>;

/**
 * One section of modelship.yaml (`gate:`, `drift:`), or a standalone file holding just that section's
 * keys. No path → the section's defaults. Only that section is validated: the rest of a modelship.yaml
 * belongs to loadConfig.
 */
export async function loadPolicy<K extends PolicySection>(
  section: K,
  path: string | undefined,
): Promise<Policy<K>> {
  const schema: ZodType = POLICY_SCHEMAS[section];
  if (!path) return schema.parse({}) as Policy<K>;
  const what = `${section} policy`;
  const doc = parseYamlText(await readText(path, what), `${what} ${path}`);
  if (doc === null || doc === undefined) return schema.parse({}) as Policy<K>;
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new UserError(`${what} ${path} must be a YAML mapping`);
  const record = doc as Record<string, unknown>;
  const standalone = Object.keys(record).some((k) => k in POLICY_SCHEMAS[section].shape);
  const value = section in record ? record[section] : standalone ? record : {};
  return parseWith(schema, value ?? {}, path, [section]) as Policy<K>;
}

/**
 * modelship.yaml's `deploy:` section (steps, shadow) for `modelship deploy` / canary-deploy: the file
 * given, else ./modelship.yaml when present, else none. Only that section is validated.
 */
export async function loadDeployConfig(
  path: string | undefined,
): Promise<{ deploy: Policy<"deploy">; file: string } | undefined> {
  const file = path ?? (existsSync(CONFIG_FILE) ? CONFIG_FILE : undefined);
  if (!file) return undefined;
  return { deploy: await loadPolicy("deploy", file), file };
}

export const loadGatePolicy = (path: string | undefined) => loadPolicy("gate", path);
export const loadDriftPolicy = (path: string | undefined) => loadPolicy("drift", path);

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${what} ${path}: ${code === "ENOENT" ? "no such file" : code}`);
  }
}

function parseYamlText(text: string, where: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0] ? ` (line ${e.linePos[0].line})` : "";
    throw new UserError(`${where} is not valid YAML${line}: ${e.message.split("\n")[0]}`);
  }
  return doc.toJS();
}

/** zod-validates a value; failures list every issue as `path: what was expected`. */
export function parseWith<S extends ZodType>(
  schema: S,
  value: unknown,
  where: string,
  prefix: string[] = [],
): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => describeIssue(schema, issue, prefix));
  throw new UserError(`${where}: ${lines.join("; ")}`, {
    hint: "see the configuration reference in docs/config.md",
  });
}

function describeIssue(root: ZodType, issue: z.core.$ZodIssue, prefix: string[]): string {
  const path = [...prefix, ...issue.path.map(String)];
  if (issue.code === "unrecognized_keys") {
    const allowed = objectKeysAt(root, issue.path.map(String));
    return issue.keys
      .map((k) => {
        const key = [...path, k].join(".");
        return `${key}: unknown key${allowed ? ` (expected one of: ${allowed.join(", ")})` : ""}`;
      })
      .join("; ");
  }
  return `${path.join(".") || "(root)"}: ${issue.message}`;
}

/** Keys the object schema at `path` accepts (looking through optional/default wrappers). */
function objectKeysAt(schema: ZodType, path: string[]): string[] | undefined {
  let current: unknown = schema;
  for (const key of [undefined, ...path]) {
    current = unwrap(current);
    if (key === undefined) continue;
    const shape = (current as { shape?: Record<string, unknown> }).shape;
    if (!shape || !(key in shape)) return undefined;
    current = shape[key];
  }
  const shape = (unwrap(current) as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : undefined;
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { innerType?: unknown } } | undefined;
  while (s?.def?.innerType) s = s.def.innerType as typeof s;
  return s;
}

/**
 * Train settings from flags > modelship.yaml > $MODELSHIP_DATA > defaults (CLI and action alike).
 * `where` names the config file for error messages about trainer params.
 */
export async function loadTrainSettings(
  configPath: string | undefined,
  flags: TrainFlags,
): Promise<{ settings: TrainSettings; where: string }> {
  const loaded = await loadConfig(configPath);
  const resolved = resolveTrainSettings(loaded.config, loaded.resolvePath, flags);
  if (!resolved.data) {
    throw new UserError("no dataset given", {
      hint: "pass --data FILE, set train.data in modelship.yaml, or MODELSHIP_DATA",
    });
  }
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(resolved.name)) {
    throw new UserError(`model name "${resolved.name}" must use lower-case letters, digits, '.', '_' or '-'`);
  }
  return { settings: { ...resolved, data: resolved.data }, where: loaded.path ?? "train params" };
}

/** Package settings from flags > modelship.yaml `package:` > defaults. */
export async function loadPackageSettings(
  configPath: string | undefined,
  flags: PackageFlags,
): Promise<PackageSettings> {
  const loaded = await loadConfig(configPath);
  const c = loaded.config.package ?? {};
  const path = (flag: string | undefined, conf: string | undefined) =>
    flag ?? (conf ? loaded.resolvePath(conf) : undefined);
  const model = path(flags.model, c.model);
  const data = path(flags.data, c.data);
  if (!model) throw new UserError("no model given", { hint: "pass --model model.onnx or set package.model" });
  if (!data) {
    throw new UserError("no evaluation data given", {
      hint: "pass --data eval.csv (labelled rows the model never saw) or set package.data",
    });
  }
  const name = flags.name ?? c.name ?? "model";
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new UserError(`model name "${name}" must use lower-case letters, digits, '.', '_' or '-'`);
  }
  return {
    model,
    data,
    labelColumn: flags.labelColumn ?? c.labelColumn,
    textColumn: flags.textColumn ?? c.textColumn,
    featureColumns: flags.featureColumns ?? c.featureColumns,
    labels: flags.labels ?? c.labels,
    scores: flags.scores ?? c.scores,
    inputName: flags.inputName ?? c.inputName,
    reference: path(flags.reference, c.reference),
    onEmpty: flags.onEmpty ?? c.onEmpty ?? "error",
    out: path(flags.out, c.out) ?? "models",
    name,
  };
}
