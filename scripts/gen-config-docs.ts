/**
 * Generates docs/config.md's modelship.yaml reference from the zod schemas, so the docs cannot drift from
 * what the loader accepts. `npm run docs:config` rewrites the block between the markers;
 * test/config-docs.test.ts fails when the committed block is stale.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import { configSchema } from "../src/config/schema.js";
import { TRAIN_DEFAULTS } from "../src/config/train.js";
import { atomicWriteFile } from "../src/util/fs.js";
import { textTrainerParamsSchema } from "../training/params.js";

export const START = "<!-- config-reference:start -->";
export const END = "<!-- config-reference:end -->";

/** The subset of JSON Schema that z.toJSONSchema emits for our schemas. */
interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  prefixItems?: JsonSchema[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  minLength?: number;
  pattern?: string;
}

export interface ConfigRow {
  path: string;
  type: string;
  default: string;
  meaning: string;
}

const toJson = (schema: z.ZodType): JsonSchema =>
  z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;

/**
 * One row per key, depth first in schema order. Objects with fixed keys get a row and then their
 * children; `train.params` is an open record in modelship.yaml but is validated by the trainer's own
 * schema, so its keys are documented from that schema.
 */
export function configRows(): ConfigRow[] {
  const rows: ConfigRow[] = [];
  const params = toJson(textTrainerParamsSchema);
  const walk = (node: JsonSchema, path: string[]): void => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const here = [...path, key];
      const joined = here.join(".");
      rows.push({
        path: joined,
        type: typeOf(child),
        default: defaultOf(joined, child),
        meaning: meaningOf(child),
      });
      if (joined === "train.params") walk(params, here);
      else if (child.properties) walk(child, here);
    }
  };
  walk(toJson(configSchema), []);
  return rows;
}

/** Key paths that hold a value rather than a fixed set of keys (what a user sets). */
export function leafPaths(): string[] {
  const rows = configRows();
  return rows.map((r) => r.path).filter((p) => !rows.some((r) => r.path.startsWith(`${p}.`)));
}

/**
 * Train keys have no zod default (flags and $MODELSHIP_DATA must be able to fill them), so their
 * fallbacks come from where resolveTrainSettings takes them.
 */
const RESOLVED_DEFAULTS: Record<string, unknown> = {
  ...Object.fromEntries(Object.entries(TRAIN_DEFAULTS).map(([k, v]) => [`train.${k}`, v])),
  "train.onEmpty": "error",
};

function defaultOf(path: string, s: JsonSchema): string {
  const value = s.default ?? RESOLVED_DEFAULTS[path];
  return value === undefined ? "—" : code(value);
}

function typeOf(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(" or ");
  if (s.enum) return s.enum.map(code).join(" \\| ");
  if (s.const !== undefined) return code(s.const);
  const bounds = boundsOf(s);
  switch (s.type) {
    case "array":
      if (s.prefixItems) return `[${s.prefixItems.map(typeOf).join(", ")}]`;
      return `list of ${s.items ? typeOf(s.items) : "any"}${s.minItems ? ` (≥ ${s.minItems} items)` : ""}`;
    case "object":
      if (s.properties) return "mapping";
      if (s.additionalProperties && typeof s.additionalProperties === "object") {
        return `map of ${typeOf(s.additionalProperties) || "any"}`;
      }
      return "mapping";
    case "integer":
      return `integer${bounds}`;
    case "number":
      return `number${bounds}`;
    case "string":
      return s.pattern ? `string \`${s.pattern}\`` : "string";
    case undefined:
      return "any";
    default:
      return Array.isArray(s.type) ? s.type.join(" or ") : s.type;
  }
}

/** Number.MAX_SAFE_INTEGER bounds that z.int() adds say nothing to a reader. */
function boundsOf(s: JsonSchema): string {
  const safe = (n: number | undefined) =>
    n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER ? n : undefined;
  s = { ...s, minimum: safe(s.minimum), maximum: safe(s.maximum) };
  const lo =
    s.exclusiveMinimum !== undefined
      ? `> ${s.exclusiveMinimum}`
      : s.minimum !== undefined
        ? `≥ ${s.minimum}`
        : "";
  const hi =
    s.exclusiveMaximum !== undefined
      ? `< ${s.exclusiveMaximum}`
      : s.maximum !== undefined
        ? `≤ ${s.maximum}`
        : "";
  const parts = [lo, hi].filter(Boolean);
  return parts.length > 0 ? ` ${parts.join(", ")}` : "";
}

function meaningOf(s: JsonSchema): string {
  const text = s.description ?? s.anyOf?.find((a) => a.description)?.description ?? "";
  return escapeCell(text);
}

function code(value: unknown): string {
  return `\`${escapeCell(JSON.stringify(value))}\``;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

export function renderTable(rows: ConfigRow[] = configRows()): string {
  const lines = [
    "| Key | Type | Default | Meaning |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| \`${r.path}\` | ${r.type} | ${r.default} | ${r.meaning} |`),
  ];
  return lines.join("\n");
}

/** The document with its reference block replaced; throws when the markers are missing. */
export function withReference(readme: string, table: string = renderTable()): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/config.md lacks the ${START} … ${END} markers`);
  const note = "<!-- generated by `npm run docs:config` from the zod schemas; do not edit by hand -->";
  return `${readme.slice(0, start)}${START}\n${note}\n\n${table}\n\n${readme.slice(end)}`;
}

/** Where the reference lives (the README links to it). */
export const CONFIG_DOC_PATH = resolve(dirname(fileURLToPath(import.meta.url)), "..", "docs", "config.md");

async function main(): Promise<void> {
  const readme = await readFile(CONFIG_DOC_PATH, "utf8");
  const next = withReference(readme);
  if (next === readme) {
    console.log("docs/config.md configuration reference is up to date");
    return;
  }
  await atomicWriteFile(CONFIG_DOC_PATH, next);
  console.log(`docs/config.md configuration reference regenerated (${configRows().length} keys)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((err: unknown) => {
    console.error(`docs:config: ${(err as Error).message}`);
    process.exit(1);
  });
}
