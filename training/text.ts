import { createRequire } from "node:module";

/**
 * Lower-cases the way the exported graph's StringNormalizer does (C++ towlower, one code point to one
 * code point), so training and serving see the same tokens. JavaScript's toLowerCase may expand a
 * character (U+0130 "İ" → "i̇"); towlower never does, and maps U+0130 to a plain "i".
 */
export function lowerCase(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII fast path
  if (/^[\x00-\x7f]*$/.test(text)) return text.toLowerCase();
  let out = "";
  for (const ch of text) {
    const lower = ch.toLowerCase();
    if (lower === ch) out += ch;
    else if (ch === "\u0130") out += "i";
    else out += [...lower].length === 1 ? lower : ch;
  }
  return out;
}

export function tokenize(text: string, pattern: RegExp): string[] {
  return text.match(pattern) ?? [];
}

/** n-gram keys join tokens with a space; token patterns must not match whitespace. */
export const NGRAM_JOIN = " ";

export function ngrams(tokens: readonly string[], minN: number, maxN: number): string[] {
  const out: string[] = [];
  for (let n = minN; n <= maxN; n++) {
    for (let i = 0; i + n <= tokens.length; i++) out.push(tokens.slice(i, i + n).join(NGRAM_JOIN));
  }
  return out;
}

let english: Set<string> | undefined;
/** English stop words from the maintained stopwords-iso list. */
export function englishStopWords(): Set<string> {
  if (!english) {
    const require = createRequire(import.meta.url);
    const all = require("stopwords-iso/stopwords-iso.json") as Record<string, string[]>;
    english = new Set(all.en ?? []);
  }
  return english;
}
