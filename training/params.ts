import { z } from "zod";
import { UserError } from "../src/util/errors.js";

/**
 * Trainer knobs. Defaults are the tuned reference from the data README (scikit-learn TF-IDF +
 * logistic regression): tokens [a-z0-9']+, uni+bigrams, sublinear tf, min_df 2, max_df 0.95,
 * 20,000 features, no stop-word removal (negations carry sentiment), balanced classes, C = 4.
 */
export const textTrainerParamsSchema = z
  .object({
    lowercase: z.boolean().default(true).describe("Lower-case the text before tokenizing."),
    /** Regular expression for one token (JavaScript and RE2 syntax alike); must not match whitespace. */
    tokenPattern: z
      .string()
      .min(1)
      .default("[a-z0-9']+")
      .refine(
        isUsablePattern,
        "tokenPattern must be a valid regular expression that never matches whitespace",
      )
      .describe("Regular expression for one token; must not match whitespace."),
    /** Smallest and largest n-gram length in tokens. */
    ngramRange: z
      .tuple([z.number().int().min(1), z.number().int().min(1).max(4)])
      .default([1, 2])
      .refine(([lo, hi]) => lo <= hi, "ngramRange: the first number must not exceed the second")
      .describe("Smallest and largest n-gram length in tokens, e.g. [1, 2]."),
    maxFeatures: z
      .number()
      .int()
      .positive()
      .default(20_000)
      .describe("Vocabulary size: the most frequent n-grams kept."),
    /** An n-gram must occur in at least this many training documents. */
    minDf: z
      .number()
      .int()
      .min(1)
      .default(2)
      .describe("An n-gram must occur in at least this many documents."),
    /** An n-gram may occur in at most this share of training documents. */
    maxDf: z
      .number()
      .gt(0)
      .max(1)
      .default(0.95)
      .describe("An n-gram may occur in at most this share of documents."),
    /** Drop English stop words (stopwords-iso) and every n-gram containing one. */
    stopWords: z
      .boolean()
      .default(false)
      .describe("Drop English stop words and every n-gram containing one."),
    /** tf → 1 + ln(tf). */
    sublinearTf: z.boolean().default(true).describe("Use 1 + ln(tf) instead of raw term frequency."),
    /** Inverse L2 regularisation strength. */
    C: z.number().positive().default(4).describe("Inverse L2 regularisation strength."),
    classWeight: z
      .enum(["balanced", "none"])
      .default("balanced")
      .describe("Weight classes inversely to their frequency, or not at all."),
    maxIterations: z.number().int().positive().default(1000).describe("L-BFGS iteration limit."),
    /** Optimiser stops when the largest gradient component (of the mean loss) is at most this. */
    tolerance: z
      .number()
      .positive()
      .default(1e-6)
      .describe("Stop when the largest gradient component of the mean loss is at most this."),
    /** Seed for the split and the folds (the optimiser itself is deterministic). */
    seed: z.number().int().default(42).describe("Seed for the train/test split and the CV folds."),
    testSize: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.2)
      .describe("Share of rows held out as the test split (stratified)."),
    cvFolds: z
      .number()
      .int()
      .min(2)
      .max(20)
      .default(5)
      .describe("Stratified cross-validation folds on the training split."),
  })
  .strict();

export type TextTrainerParams = z.infer<typeof textTrainerParamsSchema>;

/** Validates user-supplied params (e.g. `train.params` in modelship.yaml) into a full set. */
export function parseTextTrainerParams(input: unknown): TextTrainerParams {
  const result = textTrainerParamsSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = issue.path.length > 0 ? issue.path.join(".") : "params";
  throw new UserError(`trainer params: ${key}: ${issue.message}`);
}

function isUsablePattern(pattern: string): boolean {
  try {
    const re = new RegExp(pattern);
    return !re.test(" ") && !re.test("\t") && !re.test("\n") && !re.test("");
  } catch {
    return false;
  }
}
