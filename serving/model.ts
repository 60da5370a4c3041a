import type { LoadedBundle } from "../src/bundle/read.js";
import type { GoldenExample, ModelCard } from "../src/contracts/card.js";
import { argmax } from "../src/metrics/classification.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { ExitCode, UserError } from "../src/util/errors.js";

export type ModelInput = string | readonly number[];

export interface ServedPrediction {
  label: string;
  labelIndex: number;
  /** Class probabilities in `card.io.labels` order. */
  probabilities: Float32Array;
  /** Probability of the predicted class, 0..1. */
  confidence: number;
}

/** One worker's model: an ORT session plus the card. */
export class ServedModel {
  readonly card: ModelCard;
  readonly kind: "text" | "features";
  readonly featureCount: number | undefined;
  private readonly session: ClassifierSession;

  private constructor(card: ModelCard, session: ClassifierSession) {
    this.card = card;
    this.session = session;
    this.kind = session.inputKind === "text" ? "text" : "features";
    this.featureCount = session.featureCount ?? card.io.featureColumns?.length;
  }

  static async open(bundle: LoadedBundle): Promise<ServedModel> {
    const { card } = bundle;
    const session = await ClassifierSession.open(bundle.modelPath, {
      intraOpThreads: 1,
      inputName: card.io.inputs[0]?.name,
      probabilitiesOutput: card.io.probabilitiesOutput,
      labels: card.io.labels,
    });
    return new ServedModel(card, session);
  }

  get inputName(): string {
    return this.session.input.name;
  }

  /**
   * Predicts a batch. No dynamic batching across requests: bench:serve measured no reliable win
   * (docs/benchmarks.md), so each request is one model run.
   */
  predict(inputs: readonly ModelInput[]): Promise<ServedPrediction[]> {
    return this.run(inputs);
  }

  private async run(inputs: readonly ModelInput[]): Promise<ServedPrediction[]> {
    if (inputs.length === 0) return [];
    const { probabilities } = await this.session.runRaw(inputs as string[] | number[][], false);
    const labels = this.card.io.labels;
    return probabilities.map((row) => {
      const i = argmax(row);
      return { label: labels[i] ?? String(i), labelIndex: i, probabilities: row, confidence: row[i]! };
    });
  }

  /**
   * Runs every golden example and compares with the probabilities recorded at training time.
   * Doubles as warm-up: the first runs pay ORT's lazy allocations before any user request does.
   */
  async verifyGolden(tolerance: number): Promise<{ examples: number; maxDiff: number }> {
    const golden = this.card.golden;
    const got = await this.run(golden.map((g) => g.input));
    for (let round = 0; round < 3; round++) for (const g of golden) await this.run([g.input]);
    const problems: string[] = [];
    let maxDiff = 0;
    golden.forEach((g, i) => {
      const p = got[i]!;
      const diff = maxAbsDiff(p.probabilities, g.expected.probabilities);
      maxDiff = Math.max(maxDiff, diff);
      if (diff > tolerance || p.label !== g.expected.label) problems.push(describeMismatch(i, g, p, diff));
    });
    if (problems.length > 0) {
      throw new UserError(
        `model does not reproduce ${problems.length} of ${golden.length} golden examples (tolerance ${tolerance}): ${problems.slice(0, 3).join("; ")}`,
        {
          exitCode: ExitCode.failed,
          hint: "refusing to become ready; was the bundle built with another runtime?",
        },
      );
    }
    return { examples: golden.length, maxDiff };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: readonly number[]): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function describeMismatch(i: number, g: GoldenExample, p: ServedPrediction, diff: number): string {
  const input =
    typeof g.input === "string" ? JSON.stringify(g.input.slice(0, 40)) : `[${g.input.length} features]`;
  const fmt = (xs: ArrayLike<number>) => `[${Array.from(xs, (x) => x.toFixed(6)).join(", ")}]`;
  return `#${i} ${input}: expected ${g.expected.label} ${fmt(g.expected.probabilities)}, got ${p.label} ${fmt(p.probabilities)} (max diff ${diff.toExponential(2)})`;
}
