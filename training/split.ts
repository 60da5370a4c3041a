import { UserError } from "../src/util/errors.js";
import { createRng, shuffleInPlace } from "./random.js";

export interface Split {
  /** Row indices into the labels array, ascending. */
  train: number[];
  test: number[];
}

function indicesByClass(labels: readonly string[]): Map<string, number[]> {
  const byClass = new Map<string, number[]>();
  const sortedClasses = [...new Set(labels)].sort();
  for (const c of sortedClasses) byClass.set(c, []);
  for (let i = 0; i < labels.length; i++) byClass.get(labels[i]!)!.push(i);
  return byClass;
}

const ascending = (a: number, b: number) => a - b;

/**
 * Stratified train/test split: each class contributes round(testSize × its count) rows to the test
 * part (at least one, and never all of them), chosen by a seeded shuffle.
 */
export function stratifiedSplit(labels: readonly string[], testSize: number, seed: number): Split {
  if (!(testSize > 0 && testSize < 1))
    throw new UserError(`test size must be between 0 and 1, got ${testSize}`);
  const rng = createRng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const [label, idx] of indicesByClass(labels)) {
    if (idx.length < 2) {
      throw new UserError(
        `class "${label}" has ${idx.length} row; a train/test split needs at least 2 per class`,
      );
    }
    shuffleInPlace(idx, rng);
    const nTest = Math.min(idx.length - 1, Math.max(1, Math.round(idx.length * testSize)));
    test.push(...idx.slice(0, nTest));
    train.push(...idx.slice(nTest));
  }
  return { train: train.sort(ascending), test: test.sort(ascending) };
}

/**
 * Stratified k-fold: each class is shuffled (seeded) and dealt round-robin into k folds, so every fold
 * holds each class in proportion (± 1 row). Fold i is the test part of split i.
 */
export function stratifiedKFold(labels: readonly string[], k: number, seed: number): Split[] {
  if (!Number.isInteger(k) || k < 2) throw new UserError(`cross-validation needs at least 2 folds, got ${k}`);
  if (labels.length < k) throw new UserError(`cannot make ${k} folds from ${labels.length} rows`);
  const rng = createRng(seed);
  const folds: number[][] = Array.from({ length: k }, () => []);
  let offset = 0;
  for (const [label, idx] of indicesByClass(labels)) {
    if (idx.length < k) {
      throw new UserError(
        `class "${label}" has ${idx.length} rows; ${k}-fold cross-validation needs at least ${k}`,
      );
    }
    shuffleInPlace(idx, rng);
    // Continue dealing where the previous class stopped so fold sizes stay balanced overall.
    for (let j = 0; j < idx.length; j++) folds[(offset + j) % k]!.push(idx[j]!);
    offset = (offset + idx.length) % k;
  }
  return folds.map((testFold, i) => ({
    test: [...testFold].sort(ascending),
    train: folds
      .filter((_, j) => j !== i)
      .flat()
      .sort(ascending),
  }));
}
