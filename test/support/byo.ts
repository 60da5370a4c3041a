import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./data.js";

/** The shared Python-exported fixtures (README there): `$MODELSHIP_BYO_FIXTURES`, else ../shared/fixtures/byo. Never copied. */
export function byoDir(): string {
  const dir = process.env.MODELSHIP_BYO_FIXTURES ?? resolve(repoRoot, "../shared/fixtures/byo");
  if (!existsSync(join(dir, "models.json"))) {
    throw new Error(
      `BYO fixtures not found at ${dir}: set MODELSHIP_BYO_FIXTURES (tests never download them)`,
    );
  }
  return dir;
}

export const byo = (file: string) => join(byoDir(), file);

export interface ByoFixture {
  key: string;
  model: string;
  data: string;
  reference: string | undefined;
  accuracy: number;
  kind: "text" | "features";
  features: string[];
  labelColumn: string;
}

/** The three shared fixtures with their models.json facts. */
export async function byoFixtures(): Promise<ByoFixture[]> {
  const { readFile } = await import("node:fs/promises");
  const meta = JSON.parse(await readFile(byo("models.json"), "utf8")) as {
    models: Record<
      string,
      {
        sklearn_test_accuracy: number;
        data: string;
        test_split: string;
        label_column: string;
        features?: string[];
        text_column?: string;
      }
    >;
  };
  return Object.entries(meta.models).map(([key, m]) => ({
    key,
    model: byo(`${key}.onnx`),
    data: byo(m.test_split),
    reference:
      existsSync(byo(m.data)) && m.data.endsWith(".csv") && !m.data.includes("/") ? byo(m.data) : undefined,
    accuracy: m.sklearn_test_accuracy,
    kind: m.text_column ? "text" : "features",
    features: m.features ?? [],
    labelColumn: m.label_column,
  }));
}

const exec = promisify(execFile);

/**
 * A PyTorch MLP exported with torch.onnx.export (raw logits [N, 3], no label output), trained briefly
 * on iris so its predictions mean something. Made at test time by test/fixtures/torch_mlp.py; null when
 * python3-torch is not installed (the caller skips with a message).
 */
export async function torchLogitsModel(outDir: string): Promise<string | null> {
  const out = join(outDir, "torch-mlp.onnx");
  // Debian's python3-torch lives in the system interpreter; a pyenv shim named python3 may not see it.
  const pythons = [process.env.MODELSHIP_PYTHON, "/usr/bin/python3", "python3"].filter(
    (p): p is string => Boolean(p) && (p === "python3" || existsSync(p!)),
  );
  for (const python of pythons) {
    try {
      await exec(python, [join(repoRoot, "test/fixtures/torch_mlp.py"), byo("iris.csv"), out], {
        timeout: 120_000,
      });
      return out;
    } catch (err) {
      const msg = String((err as { stderr?: string }).stderr ?? err);
      if (!/No module named '(torch|onnx)'/.test(msg)) throw err;
    }
  }
  return null;
}
