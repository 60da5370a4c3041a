import type { GoldenExample, Reference } from "../contracts/card.js";
import { argmax } from "../metrics/classification.js";
import { equalEdges, histogram } from "../metrics/histogram.js";
import type { ModelInput } from "../onnx/runtime.js";

export const MIN_GOLDEN = 20;
export const GOLDEN_TARGET = 24;

/**
 * Golden examples for smoke-testing a served model: stratified by true class, and within a class
 * spread evenly over the model's confidence (sure and borderline cases both), so a serving-side
 * difference anywhere in the score range shows up.
 */
export function pickGolden(
  inputs: readonly ModelInput[],
  yTrue: readonly number[],
  probabilities: readonly ArrayLike<number>[],
  labels: readonly string[],
  target = GOLDEN_TARGET,
): GoldenExample[] {
  if (inputs.length < MIN_GOLDEN) {
    throw new RangeError(`need at least ${MIN_GOLDEN} test rows for golden examples, have ${inputs.length}`);
  }
  const byClass = labels.map((_, c) =>
    yTrue
      .map((t, i) => ({ t, i }))
      .filter((x) => x.t === c)
      .map((x) => x.i)
      .sort((a, b) => maxOf(probabilities[a]!) - maxOf(probabilities[b]!) || a - b),
  );
  // Round-robin quota so small classes give what they have and large ones fill up.
  const quota = labels.map(() => 0);
  let remaining = Math.min(target, inputs.length);
  while (remaining > 0) {
    let gave = false;
    for (let c = 0; c < labels.length && remaining > 0; c++) {
      if (quota[c]! < byClass[c]!.length) {
        quota[c]!++;
        remaining--;
        gave = true;
      }
    }
    if (!gave) break;
  }
  const chosen: number[] = [];
  byClass.forEach((rows, c) => {
    const k = quota[c]!;
    for (let j = 0; j < k; j++) chosen.push(rows[Math.floor(((j + 0.5) * rows.length) / k)]!);
  });
  return chosen.map((i) => {
    const probs = Array.from(probabilities[i]!, (p) => Math.min(1, Math.max(0, p)));
    const input = inputs[i]!;
    return {
      input: typeof input === "string" ? input : [...input],
      expected: { label: labels[argmax(probs)]!, probabilities: probs },
    };
  });
}

/** Predicted-class mix, confidence histogram and (text) input-length histogram on the test split. */
export function referenceDistribution(
  inputs: readonly ModelInput[],
  probabilities: readonly ArrayLike<number>[],
  labels: readonly string[],
): Reference {
  const counts = labels.map(() => 0);
  for (const p of probabilities) counts[argmax(p)]!++;
  const classMix: Record<string, number> = {};
  labels.forEach((l, c) => {
    classMix[l] = probabilities.length === 0 ? 0 : counts[c]! / probabilities.length;
  });
  const ref: Reference = {
    rows: probabilities.length,
    classMix,
    scoreHistogram: histogram(probabilities.map(maxOf), equalEdges(0, 1, 10)),
  };
  if (inputs.every((x) => typeof x === "string")) {
    const lengths = (inputs as string[]).map((s) => [...s].length);
    const top = Math.max(10, Math.ceil(Math.max(...lengths) / 10) * 10);
    ref.inputLengthHistogram = histogram(lengths, equalEdges(0, top, 10));
  }
  return ref;
}

function maxOf(row: ArrayLike<number>): number {
  return row[argmax(row)]!;
}
