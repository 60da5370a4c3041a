import { z } from "zod";
import { boolInput, readInputs, settingInputNames } from "../../src/action/kit.js";
import { DEPLOY_SETTINGS } from "../../src/settings/rollout.js";

const bool = boolInput;

/** action.yml inputs → typed settings; every name here is declared in action.yml. */
export const inputsSchema = z
  .object({
    image: z.string().optional(),
    model: z.string().optional(),
    repository: z.string().optional(),
    "state-dir": z.string().optional(),
    config: z.string().optional(),
    steps: z.string().optional(),
    interval: z.string().optional(),
    shadow: z.string().optional(),
    fast: bool(false),
    "max-error-rate": z.string().optional(),
    "max-p95-ms": z.string().optional(),
    /** Deprecated spelling of max-p95-ms. */
    "max-p95": z.string().optional(),
    "max-class-shift": z.string().optional(),
    "max-psi": z.string().optional(),
    "allow-no-data": bool(false),
    "standby-window": z.string().optional(),
    wait: bool(true),
    environment: z.string().default("production"),
    "github-token": z.string().optional(),
  })
  .refine((i) => Boolean(i.image) || Boolean(i.model), {
    message: "give `image` (a model image) or `model` (a bundle directory to build)",
    path: ["image"],
  });

/** Every input of action.yml, from the deploy settings table (test/settings.test.ts holds action.yml to it). */
export const INPUT_NAMES = settingInputNames(DEPLOY_SETTINGS);

export type CanaryInputs = z.infer<typeof inputsSchema>;

export function getInputs(): CanaryInputs {
  return readInputs(inputsSchema, INPUT_NAMES);
}
