import type { LoadedBundle } from "../src/bundle/read.js";
import type { GoldenExample, ModelCard } from "../src/contracts/card.js";
import { argmax } from "../src/metrics/classification.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { ExitCode, firstLine, UserError } from "../src/util/errors.js";

export type ModelInput = string | readonly number[];

export interface ServedPrediction {
  label: string;
  labelIndex: number;
  /** Class probabilities in `card.io.labels` order. */
  probabilities: Float32Array;
  /** Probability of the predicted class, 0..1. */
  confidence: number;
}

/** A request waiting for the next shared model run. */
interface Waiting {
  inputs: readonly ModelInput[];
  resolve: (predictions: ServedPrediction[]) => void;
  reject: (err: unknown) => void;
}

export interface ServedModelOptions {
  /**
   * Requests that arrive in the same event-loop turn share one model run of up to this many rows;
   * 1 runs every request alone. Nothing waits for company: a lone request runs at once.
   */
  coalesceRows?: number;
  /** Told once if the model fails shared runs that each request passes alone (coalescing turns off). */
  warn?: (message: string) => void;
}

/** One worker's model: an ORT session plus the card. */
export class ServedModel {
  readonly card: ModelCard;
  readonly kind: "text" | "features";
  readonly featureCount: number | undefined;
  /** Rows one shared run may hold (1 = coalescing off, also for graphs with a fixed batch size). */
  coalesceRows: number;
  private readonly session: ClassifierSession;
  private readonly warn: (message: string) => void;
  private waiting: Waiting[] = [];
  private flushQueued = false;
  private runs = 0;
  private coalescedRequests = 0;

  private constructor(card: ModelCard, session: ClassifierSession, opts: ServedModelOptions) {
    this.card = card;
    this.session = session;
    this.kind = session.inputKind === "text" ? "text" : "features";
    this.featureCount = session.featureCount ?? card.io.featureColumns?.length;
    const first = session.input.shape[0];
    const fixedBatch = typeof first === "number" && first > 0;
    this.coalesceRows = fixedBatch ? 1 : Math.max(1, Math.floor(opts.coalesceRows ?? 1));
    this.warn = opts.warn ?? (() => {});
  }

  static async open(bundle: LoadedBundle, opts: ServedModelOptions = {}): Promise<ServedModel> {
    const { card } = bundle;
    const session = await ClassifierSession.open(bundle.modelPath, {
      intraOpThreads: 1,
      inputName: card.io.inputs[0]?.name,
      probabilitiesOutput: card.io.probabilitiesOutput,
      labels: card.io.labels,
    });
    return new ServedModel(card, session, opts);
  }

  /** Model runs so far and the requests that shared one with another request. */
  get runStats(): { runs: number; coalescedRequests: number } {
    return { runs: this.runs, coalescedRequests: this.coalescedRequests };
  }

  get inputName(): string {
    return this.session.input.name;
  }

  /**
   * Predicts a request's rows. Requests that arrive in the same event-loop turn (several sockets
   * read in one poll) are run as one batch: onnxruntime's per-call cost and the cache refill are
   * paid once per turn instead of once per request. Rows are independent, so each request gets
   * exactly the probabilities it would get alone (up to float summation order, ~1e-7).
   */
  predict(inputs: readonly ModelInput[]): Promise<ServedPrediction[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    if (this.coalesceRows <= 1 || inputs.length >= this.coalesceRows) return this.run(inputs);
    return new Promise((resolve, reject) => {
      this.waiting.push({ inputs, resolve, reject });
      if (!this.flushQueued) {
        this.flushQueued = true;
        // The check phase runs after the poll phase has handed every readable socket to its handler.
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    const queue = this.waiting;
    this.waiting = [];
    let group: Waiting[] = [];
    let rows = 0;
    for (const w of queue) {
      if (rows + w.inputs.length > this.coalesceRows && group.length > 0) {
        void this.runGroup(group);
        group = [];
        rows = 0;
      }
      group.push(w);
      rows += w.inputs.length;
    }
    if (group.length > 0) void this.runGroup(group);
  };

  private async runGroup(group: Waiting[]): Promise<void> {
    if (group.length === 1) {
      const only = group[0]!;
      await this.run(only.inputs).then(only.resolve, only.reject);
      return;
    }
    const inputs = group.flatMap((w) => w.inputs);
    let predictions: ServedPrediction[];
    try {
      predictions = await this.run(inputs);
    } catch (err) {
      // One bad request must not fail the others: run each alone, so each gets its own outcome.
      let failedAlone = 0;
      for (const w of group) {
        await this.run(w.inputs).then(w.resolve, (e: unknown) => {
          failedAlone++;
          w.reject(e);
        });
      }
      if (failedAlone === 0 && this.coalesceRows > 1) {
        // The graph cannot take rows of different requests together; stop paying for two runs.
        this.coalesceRows = 1;
        this.warn(
          `model fails when requests share a run (${firstLine(err).slice(0, 200)}) but not alone: each request now runs alone`,
        );
      }
      return;
    }
    this.coalescedRequests += group.length;
    let at = 0;
    for (const w of group) {
      w.resolve(predictions.slice(at, at + w.inputs.length));
      at += w.inputs.length;
    }
  }

  private async run(inputs: readonly ModelInput[]): Promise<ServedPrediction[]> {
    if (inputs.length === 0) return [];
    this.runs++;
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
