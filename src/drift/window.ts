import {
  addCounts,
  binOf,
  type CountsLayout,
  codePointLength,
  type DriftCounts,
  emptyCounts,
} from "./counts.js";
import type { TextProfile } from "./vocabulary.js";

/** One served prediction as drift sees it. */
export interface Observation {
  input: string | readonly number[];
  /** Index of the predicted label in the model's labels. */
  classIndex: number;
  /** Probability of the predicted class. */
  confidence: number;
}

/**
 * Counts observations into a chunk (O(bins) memory). A worker fills one and hands it to the primary
 * when it holds `chunkSize` predictions or has waited long enough; see SlidingWindow.
 */
export class ChunkCounter {
  private counts: DriftCounts;
  private readonly layout: CountsLayout;
  private readonly text: TextProfile | undefined;
  private readonly oovEvery: number;
  private texts = 0;
  /** When the first observation of the current chunk arrived (ms since epoch), 0 when empty. */
  startedAt = 0;

  /**
   * `oovEvery`: tokenize every n-th text only. Tokenizing is most of the per-prediction cost, and the
   * OOV *rate* of a systematic sample is unbiased and still precise over a window (README "Drift").
   */
  constructor(layout: CountsLayout, text: TextProfile | undefined, oovEvery = 1) {
    this.layout = layout;
    this.text = text;
    this.oovEvery = Math.max(1, Math.floor(oovEvery));
    this.counts = emptyCounts(layout);
  }

  get size(): number {
    return this.counts.n;
  }

  add(o: Observation): void {
    const c = this.counts;
    if (c.n === 0) this.startedAt = Date.now();
    c.n++;
    c.scoreBins[binOf(o.confidence, this.layout.scoreEdges)]!++;
    if (o.classIndex >= 0 && o.classIndex < c.classes.length) c.classes[o.classIndex]!++;
    if (typeof o.input === "string") {
      if (c.lengthBins.length > 0) c.lengthBins[binOf(codePointLength(o.input), this.layout.lengthEdges)]!++;
      if (this.text && this.texts++ % this.oovEvery === 0) {
        const t = this.text.count(o.input);
        c.tokens += t.tokens;
        c.oovTokens += t.oov;
      }
    } else if (c.featureBins && this.layout.featureEdges) {
      const edges = this.layout.featureEdges;
      for (let j = 0; j < c.featureBins.length && j < o.input.length; j++) {
        c.featureBins[j]![binOf(o.input[j]!, edges[j]!)]!++;
      }
    }
  }

  /** The chunk so far, and a fresh one started. */
  take(): DriftCounts {
    const out = this.counts;
    this.counts = emptyCounts(this.layout);
    this.startedAt = 0;
    return out;
  }
}

interface Chunk {
  counts: DriftCounts;
  at: number;
}

/**
 * The last `size` predictions across all workers, as a queue of chunks plus running totals: a chunk
 * enters when a worker hands it over and the oldest leave while the rest still cover `size`.
 * Memory is bounded by the number of chunks that cover one window (each O(bins)), whatever the traffic.
 */
export class SlidingWindow {
  readonly size: number;
  private readonly chunks: Chunk[] = [];
  private readonly totals: DriftCounts;

  constructor(size: number, layout: CountsLayout) {
    if (!(size >= 1)) throw new RangeError("window size must be at least 1");
    this.size = size;
    this.totals = emptyCounts(layout);
  }

  push(counts: DriftCounts, at = Date.now()): void {
    if (counts.n === 0) return;
    addCounts(this.totals, counts);
    this.chunks.push({ counts, at });
    while (this.chunks.length > 1 && this.totals.n - this.chunks[0]!.counts.n >= this.size) {
      addCounts(this.totals, this.chunks.shift()!.counts, -1);
    }
  }

  get counts(): Readonly<DriftCounts> {
    return this.totals;
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  get oldestAt(): Date | undefined {
    const c = this.chunks[0];
    return c ? new Date(c.at) : undefined;
  }

  get newestAt(): Date | undefined {
    const c = this.chunks.at(-1);
    return c ? new Date(c.at) : undefined;
  }
}
