import { z } from "zod";
import { boolInput, readInputs, settingInputNames } from "../../src/action/kit.js";
import { BUILD_SETTINGS } from "../../src/settings/build.js";

const bool = boolInput;

/** action.yml inputs → typed settings; every name here is declared in action.yml. */
export const inputsSchema = z
  .object({
    bundle: z.string({ message: "required: the model bundle directory" }).min(1),
    repository: z.string().optional(),
    /** Deprecated name of repository. */
    image: z.string().optional(),
    tags: z
      .string()
      .optional()
      .transform((v) =>
        (v ?? "")
          .split(/[\n,]/)
          .map((t) => t.trim())
          .filter(Boolean),
      ),
    push: bool(false),
    registry: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    "base-image": z.string().optional(),
    smoke: bool(true),
    "smoke-timeout": z
      .string()
      .optional()
      .transform((v, ctx) => {
        const n = Number(v ?? "60");
        if (!Number.isFinite(n) || n <= 0) {
          ctx.addIssue({ code: "custom", message: "expected a positive number of seconds" });
          return z.NEVER;
        }
        return n;
      }),
  })
  .superRefine((v, ctx) => {
    if (v.registry && (!v.username || !v.password))
      ctx.addIssue({ code: "custom", path: ["registry"], message: "needs username and password too" });
    if ((v.username || v.password) && !v.registry)
      ctx.addIssue({
        code: "custom",
        path: ["registry"],
        message: "required when username/password are given",
      });
    if (v.registry && !v.push)
      ctx.addIssue({
        code: "custom",
        path: ["push"],
        message: "registry login is only used to push: set push: true",
      });
  });

/** Every input of action.yml, from the build settings table (test/settings.test.ts holds action.yml to it). */
export const INPUT_NAMES = settingInputNames(BUILD_SETTINGS);

export type BuildImageInputs = z.infer<typeof inputsSchema>;

export function getInputs(): BuildImageInputs {
  return readInputs(inputsSchema, INPUT_NAMES);
}
