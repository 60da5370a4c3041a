import { z } from "zod";
import { boolInput, readInputs, settingInputNames } from "../../src/action/kit.js";
import { ROLLBACK_SETTINGS } from "../../src/settings/rollout.js";

const bool = boolInput;

/** action.yml inputs → typed settings; every name here is declared in action.yml. */
export const inputsSchema = z.object({
  version: z.string().optional(),
  reason: z.string({ message: "required: say why you roll back (it is recorded)" }).min(1),
  by: z.string().optional(),
  "standby-window": z.string().optional(),
  "state-dir": z.string().optional(),
  wait: bool(true),
  environment: z.string().default("production"),
  "github-token": z.string().optional(),
});

/** Every input of action.yml, from the rollback settings table (test/settings.test.ts holds action.yml to it). */
export const INPUT_NAMES = settingInputNames(ROLLBACK_SETTINGS);

export type RollbackInputs = z.infer<typeof inputsSchema>;

export function getInputs(): RollbackInputs {
  return readInputs(inputsSchema, INPUT_NAMES);
}
