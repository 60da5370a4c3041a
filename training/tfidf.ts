import { englishStopWords, lowerCase, NGRAM_JOIN, ngrams, tokenize } from "./text.js";

/** Compressed sparse rows; values are float64, column indices ascending within a row. */
export interface SparseMatrix {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  values: Float64Array;
}

export interface TfidfOptions {
  lowercase: boolean;
  tokenPattern: string;
  ngramRange: [number, number];
  maxFeatures: number;
  /** Minimum number of training documents an n-gram must occur in. */
  minDf: number;
  /** Maximum share of training documents an n-gram may occur in. */
  maxDf: number;
  stopWords: boolean;
  sublinearTf: boolean;
}

/**
 * TF-IDF as scikit-learn computes it (smooth idf = ln((1+n)/(1+df)) + 1, sublinear tf = 1 + ln(tf),
 * L2-normalised rows), with a deterministic vocabulary: n-grams kept by min/max document frequency,
 * capped at the `maxFeatures` most frequent over the corpus (ties by code-unit order), then sorted.
 * Stop words leave the vocabulary together with every n-gram containing one, so the exported graph
 * (which counts n-grams over all tokens) reproduces it exactly.
 */
export class TfidfVectorizer {
  readonly vocabulary: string[];
  readonly idf: Float64Array;
  private readonly index: Map<string, number>;
  private readonly pattern: RegExp;

  private constructor(
    readonly options: TfidfOptions,
    vocabulary: string[],
    idf: Float64Array,
  ) {
    this.vocabulary = vocabulary;
    this.idf = idf;
    this.index = new Map(vocabulary.map((term, i) => [term, i]));
    this.pattern = new RegExp(options.tokenPattern, "g");
  }

  static fit(texts: readonly string[], options: TfidfOptions): TfidfVectorizer {
    return TfidfVectorizer.fitTransform(texts, options).vectorizer;
  }

  /** Fits and transforms the training texts in one pass over their n-grams. */
  static fitTransform(
    texts: readonly string[],
    options: TfidfOptions,
  ): { vectorizer: TfidfVectorizer; X: SparseMatrix } {
    const pattern = new RegExp(options.tokenPattern, "g");
    const stop = options.stopWords ? englishStopWords() : undefined;
    // Integer ids per distinct n-gram keep the counting off string-keyed maps (most bigrams are unique).
    const ids = new Map<string, number>();
    const terms: string[] = [];
    let df = new Int32Array(1 << 16);
    let total = new Int32Array(1 << 16);
    let lastDoc = new Int32Array(1 << 16).fill(-1);
    const docs: Int32Array[] = texts.map((text, d) => {
      const grams = docNgrams(text, pattern, options);
      const out = new Int32Array(grams.length);
      grams.forEach((g, k) => {
        let id = ids.get(g);
        if (id === undefined) {
          id = terms.length;
          ids.set(g, id);
          terms.push(g);
          if (id >= df.length) {
            df = grow(df, 0);
            total = grow(total, 0);
            lastDoc = grow(lastDoc, -1);
          }
        }
        total[id]!++;
        if (lastDoc[id] !== d) {
          lastDoc[id] = d;
          df[id]!++;
        }
        out[k] = id;
      });
      return out;
    });
    const maxDocs = options.maxDf * texts.length;
    const candidates: number[] = [];
    for (let id = 0; id < terms.length; id++) {
      const d = df[id]!;
      if (d < options.minDf || d > maxDocs) continue;
      if (stop && terms[id]!.split(NGRAM_JOIN).some((t) => stop.has(t))) continue;
      candidates.push(id);
    }
    candidates.sort((a, b) => total[b]! - total[a]! || compare(terms[a]!, terms[b]!));
    const kept = candidates.slice(0, options.maxFeatures).sort((a, b) => compare(terms[a]!, terms[b]!));
    const vocabulary = kept.map((id) => terms[id]!);
    const n = texts.length;
    const idf = Float64Array.from(kept, (id) => Math.log((1 + n) / (1 + df[id]!)) + 1);
    const vectorizer = new TfidfVectorizer(options, vocabulary, idf);
    const column = new Int32Array(terms.length).fill(-1);
    kept.forEach((id, j) => {
      column[id] = j;
    });
    return { vectorizer, X: vectorizer.fromColumns(docs.map((doc) => doc.map((id) => column[id]!))) };
  }

  transform(texts: readonly string[]): SparseMatrix {
    return this.fromColumns(
      texts.map((text) =>
        Int32Array.from(docNgrams(text, this.pattern, this.options), (g) => this.index.get(g) ?? -1),
      ),
    );
  }

  /** Rows of column indices (−1 = not in the vocabulary) → L2-normalised tf-idf rows. */
  private fromColumns(docs: readonly Int32Array[]): SparseMatrix {
    const indptr = new Int32Array(docs.length + 1);
    const indices: number[] = [];
    const values: number[] = [];
    const counts = new Map<number, number>();
    docs.forEach((cols, r) => {
      counts.clear();
      for (const j of cols) if (j >= 0) counts.set(j, (counts.get(j) ?? 0) + 1);
      const sortedCols = [...counts.keys()].sort((a, b) => a - b);
      let norm = 0;
      const start = values.length;
      for (const j of sortedCols) {
        const tf = counts.get(j)!;
        const v = (this.options.sublinearTf ? 1 + Math.log(tf) : tf) * this.idf[j]!;
        indices.push(j);
        values.push(v);
        norm += v * v;
      }
      if (norm > 0) {
        norm = Math.sqrt(norm);
        for (let k = start; k < values.length; k++) values[k] = values[k]! / norm;
      }
      indptr[r + 1] = values.length;
    });
    return {
      rows: docs.length,
      cols: this.vocabulary.length,
      indptr,
      indices: Int32Array.from(indices),
      values: Float64Array.from(values),
    };
  }
}

function grow(a: Int32Array, fill: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2).fill(fill);
  b.set(a);
  return b;
}

function docNgrams(text: string, pattern: RegExp, options: TfidfOptions): string[] {
  const tokens = tokenize(options.lowercase ? lowerCase(text) : text, pattern);
  return ngrams(tokens, options.ngramRange[0], options.ngramRange[1]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
