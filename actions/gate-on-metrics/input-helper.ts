import { z } from "zod";
import { boolInput, readInputs, settingInputNames } from "../../src/action/kit.js";
import { GATE_SETTINGS } from "../../src/settings/commands.js";

const bool = boolInput;

/** action.yml inputs → typed settings; every name here is declared in action.yml (tests check both ways). */
export const inputsSchema = z.object({
  candidate: z.string({ message: "required: the candidate bundle directory" }).min(1),
  baseline: z.string().optional(),
  "baseline-release": z.string().optional(),
  "baseline-from-host": bool(false),
  "state-dir": z.string().optional(),
  "eval-data": z.string().optional(),
  dataset: z.string().optional(),
  policy: z.string().optional(),
  comment: bool(true),
  "fail-on-violation": bool(true),
  "github-token": z.string().optional(),
  extra: z.string().optional(),
});

/** The inputs of the settings table (src/settings/commands.ts); test/settings.test.ts holds the schema to it. */
export const INPUT_NAMES = settingInputNames(GATE_SETTINGS);

export type GateInputs = z.infer<typeof inputsSchema>;

export function getInputs(): GateInputs {
  return readInputs(inputsSchema, INPUT_NAMES);
}
