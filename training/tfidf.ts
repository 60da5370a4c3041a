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
    const pattern = new RegExp(options.tokenPattern, "g");
    const stop = options.stopWords ? englishStopWords() : undefined;
    const df = new Map<string, number>();
    const total = new Map<string, number>();
    for (const text of texts) {
      const seen = new Set<string>();
      for (const g of docNgrams(text, pattern, options)) {
        total.set(g, (total.get(g) ?? 0) + 1);
        if (!seen.has(g)) {
          seen.add(g);
          df.set(g, (df.get(g) ?? 0) + 1);
        }
      }
    }
    const maxDocs = options.maxDf * texts.length;
    const candidates: string[] = [];
    for (const [g, d] of df) {
      if (d < options.minDf || d > maxDocs) continue;
      if (stop && g.split(NGRAM_JOIN).some((t) => stop.has(t))) continue;
      candidates.push(g);
    }
    candidates.sort((a, b) => total.get(b)! - total.get(a)! || compare(a, b));
    const vocabulary = candidates.slice(0, options.maxFeatures).sort(compare);
    const n = texts.length;
    const idf = Float64Array.from(vocabulary, (g) => Math.log((1 + n) / (1 + df.get(g)!)) + 1);
    return new TfidfVectorizer(options, vocabulary, idf);
  }

  /** Restores a fitted vectorizer (vocabulary and idf as fitted). */
  static restore(options: TfidfOptions, vocabulary: string[], idf: Float64Array): TfidfVectorizer {
    return new TfidfVectorizer(options, vocabulary, idf);
  }

  transform(texts: readonly string[]): SparseMatrix {
    const indptr = new Int32Array(texts.length + 1);
    const indices: number[] = [];
    const values: number[] = [];
    const counts = new Map<number, number>();
    texts.forEach((text, r) => {
      counts.clear();
      for (const g of docNgrams(text, this.pattern, this.options)) {
        const j = this.index.get(g);
        if (j !== undefined) counts.set(j, (counts.get(j) ?? 0) + 1);
      }
      const cols = [...counts.keys()].sort((a, b) => a - b);
      let norm = 0;
      const start = values.length;
      for (const j of cols) {
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
      rows: texts.length,
      cols: this.vocabulary.length,
      indptr,
      indices: Int32Array.from(indices),
      values: Float64Array.from(values),
    };
  }
}

function docNgrams(text: string, pattern: RegExp, options: TfidfOptions): string[] {
  const tokens = tokenize(options.lowercase ? lowerCase(text) : text, pattern);
  return ngrams(tokens, options.ngramRange[0], options.ngramRange[1]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
