import { z } from "zod";
import { readInputs, settingInputNames } from "../../src/action/kit.js";
import { DRIFT_SETTINGS } from "../../src/settings/commands.js";

/** action.yml inputs → typed settings; every name here is declared in action.yml. */
export const inputsSchema = z.object({
  url: z
    .url({ protocol: /^https?$/, message: "url must be an http(s) URL such as http://127.0.0.1:8080" })
    .optional(),
  log: z.string().optional(),
  model: z.string().optional(),
  policy: z.string().optional(),
  "state-dir": z.string().optional(),
  "retrain-workflow": z.string().optional(),
  ref: z.string().optional(),
  "issue-label": z.string().min(1).default("drift"),
  "github-token": z.string().optional(),
});

/** The inputs of the settings table (src/settings/commands.ts); test/settings.test.ts holds the schema to it. */
export const INPUT_NAMES = settingInputNames(DRIFT_SETTINGS);
export type CheckDriftInputs = z.infer<typeof inputsSchema>;

export function getInputs(): CheckDriftInputs {
  return readInputs(inputsSchema, INPUT_NAMES);
}
