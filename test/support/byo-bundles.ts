import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readBundle } from "../../src/bundle/read.js";
import { packageBundle } from "../../src/package/package.js";
import { Reporter } from "../../src/util/progress.js";
import { byo } from "./byo.js";
import { repoRoot } from "./data.js";

/**
 * Bundles packaged from the shared BYO fixtures, cached per fixture under test/.cache/byo (rebuilt
 * when the cached one does not read back or src/package changed), so serving, image and acceptance
 * tests share them.
 */
export async function byoBundle(
  key: "iris-logreg-zipmap" | "wine-gbm" | "airline-3class-tfidf-lr",
  opts: { name?: string; model?: string; labelsSwapped?: boolean } = {},
): Promise<string> {
  const name = opts.name ?? key.split("-")[0]!;
  const out = join(repoRoot, "test", ".cache", "byo", name);
  const stampFile = join(out, ".package-src");
  const stamp = await packageSourceStamp();
  try {
    const [dir] = (await readdir(out)).filter((d) => !d.startsWith("."));
    if (dir && (await readFile(stampFile, "utf8")) === stamp) {
      await readBundle(join(out, dir));
      return join(out, dir);
    }
  } catch {
    // (re)build below
  }
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const data: Record<string, [string, string | undefined]> = {
    "iris-logreg-zipmap": ["iris-test.csv", "iris.csv"],
    "wine-gbm": ["wine-test.csv", "wine.csv"],
    "airline-3class-tfidf-lr": ["airline-3class-test.csv", undefined],
  };
  const [evalCsv, ref] = data[key]!;
  const result = await packageBundle(
    {
      model: opts.model ?? byo(`${key}.onnx`),
      data: byo(evalCsv),
      labelColumn: undefined,
      textColumn: undefined,
      featureColumns: undefined,
      labels: undefined,
      scores: undefined,
      inputName: undefined,
      reference: ref ? byo(ref) : undefined,
      onEmpty: "error",
      out,
      name,
    },
    new Reporter("silent"),
  );
  await writeFile(stampFile, stamp);
  return result.dir;
}

/** Hash of the code that writes a packaged bundle: a cached bundle from older code is rebuilt. */
async function packageSourceStamp(): Promise<string> {
  const h = createHash("sha256");
  for (const f of ["graph.ts", "package.ts", "features.ts"]) {
    h.update(await readFile(join(repoRoot, "src", "package", f)));
  }
  return h.digest("hex");
}
