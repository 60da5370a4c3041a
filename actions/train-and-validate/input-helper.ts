import { z } from "zod";
import { boolInput, readInputs, settingInputNames } from "../../src/action/kit.js";
import { TRAIN_SETTINGS } from "../../src/settings/commands.js";

const list = z
  .string()
  .optional()
  .transform((v) =>
    v === undefined
      ? undefined
      : v
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== ""),
  );

const positive = (what: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) {
        ctx.addIssue({ code: "custom", message: `${what}: expected a positive number, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const bool = boolInput;

const labelMap = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined) return undefined;
    const map: Record<string, string> = {};
    for (const pair of v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)) {
      const eq = pair.indexOf("=");
      if (eq <= 0 || eq === pair.length - 1) {
        ctx.addIssue({ code: "custom", message: `expected from=to pairs, got "${pair}"` });
        return z.NEVER;
      }
      map[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
    return map;
  });

/** action.yml inputs → typed settings; every name here is declared in action.yml. */
export const inputsSchema = z.object({
  config: z.string().optional(),
  data: z.string().optional(),
  "text-column": z.string().optional(),
  "label-column": z.string().optional(),
  labels: list,
  "label-map": labelMap,
  "drop-empty": bool(false),
  out: z.string().optional(),
  name: z.string().optional(),
  model: z.string().optional(),
  "feature-columns": list,
  "input-name": z.string().optional(),
  scores: z.enum(["probabilities", "logits"], { message: 'expected "probabilities" or "logits"' }).optional(),
  reference: z.string().optional(),
  "max-size-mb": positive("max-size-mb"),
  "max-load-ms": positive("max-load-ms"),
  "max-p95-ms": positive("max-p95-ms"),
  "fail-on-check": bool(true),
});

/** The inputs of the settings table (src/settings/commands.ts); test/settings.test.ts holds the schema to it. */
export const INPUT_NAMES = settingInputNames(TRAIN_SETTINGS);

export type TrainAndValidateInputs = z.infer<typeof inputsSchema>;

export function getInputs(): TrainAndValidateInputs {
  return readInputs(inputsSchema, INPUT_NAMES);
}
