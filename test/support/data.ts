import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The real airline-sentiment CSV: `$MODELSHIP_DATA`, else `../shared/data/` next to the repo. Never copied. */
export function dataPath(): string {
  const path = process.env.MODELSHIP_DATA ?? resolve(repoRoot, "../shared/data/airline_sentiment.csv");
  if (!existsSync(path)) {
    throw new Error(
      `test dataset not found at ${path}: set MODELSHIP_DATA to airline_sentiment.csv (tests never download it)`,
    );
  }
  return path;
}

/** Every tweet of the shared dataset, for the load generator (src/load/generator.ts). */
export function tweetTexts(): { data: string; textColumn: string } {
  return { data: dataPath(), textColumn: "text" };
}
