import { z } from "zod";
import { FAST_SHADOW_STEP_MS, SHADOW_STEP_MS, shadowConfigSchema } from "../shadow/compare.js";

/** A duration as a user writes it: "30s", "500ms", "2m", or a plain number of seconds (0 = off). */
const durationText = z
  .union([z.string(), z.number().min(0)])
  .describe('A duration: "30s", "500ms", "2m", or a number of seconds.');

/**
 * modelship.yaml `deploy:` — the rollout plan `modelship deploy` / actions/canary-deploy apply under
 * their flags and inputs (`--steps`, `--shadow` win). Parsed and checked with the flags in
 * src/rollout/options.ts (`settingsFromFlags`), so a file and a command line are held to the same rules.
 */
export const deployConfigSchema = z
  .object({
    steps: z
      .union([z.string(), z.array(z.union([z.number(), z.string()]))])
      .optional()
      .describe(
        `Rollout steps, as \`--steps\`: "shadow,5,25,50,100" or [shadow, 5, 25, 50, 100]; a leading \`shadow\` is a shadow step of \`shadow\`'s duration (default ${SHADOW_STEP_MS / 1000}s, ${FAST_SHADOW_STEP_MS / 1000}s with --fast), then the canary percentages.`,
      ),
    shadow: z
      .union([
        durationText,
        shadowConfigSchema
          .partial()
          .extend({
            duration: durationText
              .optional()
              .describe("How long the shadow step mirrors (0 = off); given, it turns the step on."),
          })
          .strict(),
      ])
      .optional()
      .describe(
        "Shadow step: a duration (as `--shadow`; turns the step on, 0 = off) or a mapping with `duration` and the verdict thresholds (maxDisagreement, maxMeanAbsDelta, maxErrorRate, minPairs, examples, exampleChars).",
      ),
  })
  .strict();
export type DeployConfig = z.infer<typeof deployConfigSchema>;
