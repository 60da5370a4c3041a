import type { IoSignature } from "../src/contracts/card.js";
import { accuracy, argmax, confusionMatrix, macroF1, meanStd, perClassScores } from "../src/metrics/index.js";
import { UserError } from "../src/util/errors.js";
import { LogisticRegression } from "./logistic.js";
import { exportTextModel, textModelIoSignature } from "./onnx/text-model.js";
import { exportDenseTextModel } from "./onnx/text-model-dense.js";
import { parseTextTrainerParams, type TextTrainerParams } from "./params.js";
import { stratifiedKFold } from "./split.js";
import { TfidfVectorizer } from "./tfidf.js";

export { parseTextTrainerParams, type TextTrainerParams, textTrainerParamsSchema } from "./params.js";
export { type Split, stratifiedKFold, stratifiedSplit } from "./split.js";

export const TRAINER_NAME = "modelship-tfidf-logreg";

export interface LabelledText {
  text: string;
  label: string;
}

export interface TrainProgress {
  phase: "vectorize" | "optimize" | "done";
  iteration?: number;
  loss?: number;
}

export interface TrainedTextModel {
  /** Sorted class labels; probability columns follow this order. */
  labels: string[];
  params: TextTrainerParams;
  vocabularySize: number;
  /** Optimiser iterations and whether it reached the tolerance. */
  optimizer: { iterations: number; converged: boolean };
  predictProba(texts: string[]): number[][];
  /**
   * One ONNX graph from raw strings to probabilities and labels: the sparse graph
   * (training/onnx/text-model.ts), or the dense one earlier versions wrote (text-model-dense.ts; for
   * compatibility tests and benchmarks).
   */
  toOnnx(opts?: { name?: string; graph?: "sparse" | "dense" }): Uint8Array;
  ioSignature(): IoSignature;
}

/**
 * TF-IDF (word n-grams) + L2 logistic regression, deterministic for given examples and params.
 * Throws UserError for fewer than two classes or an empty vocabulary.
 */
export function trainTextClassifier(
  examples: readonly LabelledText[],
  params?: Partial<TextTrainerParams>,
  onProgress?: (p: TrainProgress) => void,
): TrainedTextModel {
  const full = parseTextTrainerParams(params ?? {});
  const labels = [...new Set(examples.map((e) => e.label))].sort();
  if (labels.length < 2) {
    throw new UserError(
      `training needs at least two classes, got ${labels.length === 0 ? "no rows" : `only "${labels[0]}"`}`,
    );
  }
  onProgress?.({ phase: "vectorize" });
  const texts = examples.map((e) => e.text);
  const { vectorizer, X } = TfidfVectorizer.fitTransform(texts, {
    lowercase: full.lowercase,
    tokenPattern: full.tokenPattern,
    ngramRange: full.ngramRange,
    maxFeatures: full.maxFeatures,
    minDf: full.minDf,
    maxDf: full.maxDf,
    stopWords: full.stopWords,
    sublinearTf: full.sublinearTf,
  });
  if (vectorizer.vocabulary.length === 0) {
    throw new UserError(
      `no n-gram occurs in at least ${full.minDf} of ${texts.length} training texts (and in at most ${full.maxDf * 100}%)`,
      { hint: "use more data or lower minDf" },
    );
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const y = Int32Array.from(examples, (e) => index.get(e.label)!);
  const model = LogisticRegression.fit(X, y, labels.length, {
    C: full.C,
    classWeight: full.classWeight,
    maxIterations: full.maxIterations,
    tolerance: full.tolerance,
    onIteration: (iteration, loss) => onProgress?.({ phase: "optimize", iteration, loss }),
  });
  onProgress?.({ phase: "done", iteration: model.iterations });

  return {
    labels,
    params: full,
    vocabularySize: vectorizer.vocabulary.length,
    optimizer: { iterations: model.iterations, converged: model.converged },
    predictProba: (batch) => model.predictProba(vectorizer.transform(batch)),
    toOnnx: (opts) =>
      (opts?.graph === "dense" ? exportDenseTextModel : exportTextModel)({
        vectorizer,
        model,
        labels,
        name: opts?.name ?? "text-classifier",
      }),
    ioSignature: () => textModelIoSignature(labels),
  };
}

export interface CrossValidation {
  folds: number;
  accuracy: { mean: number; std: number };
  macroF1: { mean: number; std: number };
}

/** Stratified k-fold estimate (population std, as scikit-learn's `cross_val_score(...).std()`). */
export function crossValidate(
  examples: readonly LabelledText[],
  params: Partial<TextTrainerParams> | undefined,
  folds: number,
  seed: number,
): CrossValidation {
  const labels = [...new Set(examples.map((e) => e.label))].sort();
  const accs: number[] = [];
  const f1s: number[] = [];
  for (const split of stratifiedKFold(
    examples.map((e) => e.label),
    folds,
    seed,
  )) {
    const model = trainTextClassifier(
      split.train.map((i) => examples[i]!),
      params,
    );
    const test = split.test.map((i) => examples[i]!);
    const yTrue = test.map((e) => labels.indexOf(e.label));
    const yPred = model
      .predictProba(test.map((e) => e.text))
      .map((p) => labels.indexOf(model.labels[argmax(p)]!));
    accs.push(accuracy(yTrue, yPred));
    f1s.push(macroF1(perClassScores(confusionMatrix(yTrue, yPred, labels.length))));
  }
  return { folds, accuracy: meanStd(accs), macroF1: meanStd(f1s) };
}
