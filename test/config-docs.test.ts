import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  CONFIG_DOC_PATH,
  configRows,
  END,
  leafPaths,
  renderTable,
  START,
  withReference,
} from "../scripts/gen-config-docs.js";
import { configSchema } from "../src/config/schema.js";
import { textTrainerParamsSchema } from "../training/params.js";

/** Every key path a user can set, read straight off the zod objects (independent of the generator). */
function schemaLeaves(schema: z.ZodType, prefix: string[] = []): string[] {
  let s = schema as z.ZodType & { def: { innerType?: z.ZodType }; shape?: Record<string, z.ZodType> };
  while (s.def.innerType) s = s.def.innerType as typeof s;
  if (!s.shape) return [prefix.join(".")];
  return Object.entries(s.shape).flatMap(([key, child]) => {
    const path = [...prefix, key];
    if (path.join(".") === "train.params") return schemaLeaves(textTrainerParamsSchema, path);
    return schemaLeaves(child, path);
  });
}

describe("docs/config.md configuration reference (npm run docs:config)", () => {
  it("is up to date with the zod schemas", async () => {
    const readme = await readFile(CONFIG_DOC_PATH, "utf8");
    expect(readme).toContain(START);
    expect(readme).toContain(END);
    // Regenerating in memory must be a no-op; otherwise run `npm run docs:config` and commit docs/config.md.
    expect(withReference(readme)).toBe(readme);
  });

  it("lists every leaf key path of modelship.yaml, trainer params included", async () => {
    const leaves = schemaLeaves(configSchema);
    expect(leaves).toContain("train.params.cvFolds");
    expect(leaves).toContain("drift.retrain.workflow");
    expect(leafPaths().sort()).toEqual([...leaves].sort());

    const readme = await readFile(CONFIG_DOC_PATH, "utf8");
    const block = readme.slice(readme.indexOf(START), readme.indexOf(END));
    for (const path of leaves) expect(block, path).toContain(`| \`${path}\` |`);
  });

  it("gives every key a meaning and shows defaults, allowed values and bounds", () => {
    const rows = configRows();
    for (const row of rows) expect(row.meaning, row.path).not.toBe("");
    const byPath = new Map(rows.map((r) => [r.path, r]));
    expect(byPath.get("validate.maxP95Ms")?.default).toBe("`100`");
    expect(byPath.get("train.textColumn")?.default).toBe('`"text"`');
    expect(byPath.get("train.onEmpty")?.type).toBe('`"error"` \\| `"drop"`');
    expect(byPath.get("train.params.cvFolds")?.type).toBe("integer ≥ 2, ≤ 20");
    expect(byPath.get("gate.goldenTolerance")?.type).toBe("number > 0, ≤ 0.5");
  });

  it("fails loudly when the document lacks the markers", () => {
    expect(() => withReference("# no markers here\n")).toThrow(/markers/);
    expect(withReference(`a\n${START}\nstale\n${END}\nb`)).toContain(renderTable());
  });
});
