import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readBundle } from "../../src/bundle/read.js";
import type { ModelCard } from "../../src/contracts/card.js";
import { loadCsv, loadTextDataset } from "../../src/data/dataset.js";
import type { Observation } from "../../src/drift/window.js";
import { argmax } from "../../src/metrics/classification.js";
import { ClassifierSession } from "../../src/onnx/session.js";
import { createRng } from "../../training/random.js";
import { stratifiedSplit } from "../../training/split.js";
import { dataPath, repoRoot } from "./data.js";

/**
 * Real prediction streams for drift tests: texts run through the bundle's ONNX model (onnxruntime),
 * each turned into what the server's drift counter sees. The held-out set is the bundle's own test
 * split, rebuilt with the card's seed and test size (the test asserts it reproduces reference.classMix).
 */
export interface Streams {
  card: ModelCard;
  modelPath: string;
  heldOut: Observation[];
  /** Held-out rows' airline (same order as heldOut). */
  heldOutAirline: string[];
  neutral: Observation[];
  nonAirline: Observation[];
  heldOutTexts: string[];
  neutralTexts: string[];
  nonAirlineTexts: string[];
}

export async function predictionStreams(bundleDir: string): Promise<Streams> {
  const { card, modelPath } = await readBundle(bundleDir);
  const params = card.training!.params as { testSize: number; seed: number };
  const data = dataPath();
  const textColumn = card.dataset.textColumn ?? "text";
  const ds = loadTextDataset({
    path: data,
    textColumn,
    labelColumn: card.dataset.labelColumn,
    labels: card.io.labels,
  });
  const split = stratifiedSplit(
    ds.examples.map((e) => e.label),
    params.testSize,
    params.seed,
  );
  const heldOutTexts = split.test.map((i) => ds.examples[i]!.text);

  // The airline of each held-out row: same row selection as loadTextDataset (label in labels, text non-empty).
  const table = loadCsv(data);
  const kept = table.rows.filter(
    (r) => card.io.labels.includes(r[card.dataset.labelColumn]!.trim()) && r[textColumn]!.trim() !== "",
  );
  if (kept.length !== ds.examples.length)
    throw new Error("drift streams: row selection differs from the dataset loader");
  const heldOutAirline = split.test.map((i) => kept[i]!.airline ?? "");
  const neutralTexts = table.rows
    .filter((r) => r[card.dataset.labelColumn]!.trim() === "neutral" && r[textColumn]!.trim() !== "")
    .map((r) => r[textColumn]!);
  const nonAirlineTexts = nonAirlineSentences();

  const session = await ClassifierSession.open(modelPath, {
    labels: card.io.labels,
    probabilitiesOutput: card.io.probabilitiesOutput,
  });
  try {
    const observe = async (texts: string[]): Promise<Observation[]> => {
      const { probabilities } = await session.predict(texts);
      return probabilities.map((row, i) => {
        const c = argmax(row);
        return { input: texts[i]!, classIndex: c, confidence: row[c]! };
      });
    };
    return {
      card,
      modelPath,
      heldOut: await observe(heldOutTexts),
      heldOutAirline,
      neutral: card.io.labels.includes("neutral") ? [] : await observe(neutralTexts),
      nonAirline: await observe(nonAirlineTexts),
      heldOutTexts,
      neutralTexts,
      nonAirlineTexts,
    };
  } finally {
    await session.release();
  }
}

/**
 * Text that is not about airlines: sentences of the English prose in some installed packages' READMEs
 * (code blocks, tables and markup removed), cut to tweet length.
 */
export function nonAirlineSentences(): string[] {
  const files = [
    "fastify/README.md",
    "zod/README.md",
    "commander/Readme.md",
    "pino/README.md",
    "yaml/README.md",
  ];
  const out: string[] = [];
  for (const f of files) {
    let md: string;
    try {
      md = readFileSync(join(repoRoot, "node_modules", f), "utf8");
    } catch {
      continue;
    }
    md = md.replace(/```[\s\S]*?```/g, " ").replace(/<[^>]+>/g, " ");
    for (const line of md.split("\n")) {
      if (/^\s*(\||#|!\[|\[!|-{3,})/.test(line)) continue;
      const clean = line
        .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
        .replace(/[`*_]/g, "")
        .trim();
      for (const s of clean.split(/(?<=[.!?])\s+/)) {
        if (s.length >= 30 && /[a-z]{3,}/i.test(s)) out.push(s.slice(0, 140));
      }
    }
  }
  return out;
}

/** Deterministic PRNG (the trainer's mulberry32) so the false-alarm count is reproducible. */
export const rng = createRng;
