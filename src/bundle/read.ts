import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CARD_FILE, MODEL_FILE, type ModelCard, modelCardSchema } from "../contracts/card.js";
import { UserError } from "../util/errors.js";
import { sha256File } from "../util/fs.js";

export interface LoadedBundle {
  dir: string;
  modelPath: string;
  card: ModelCard;
}

/**
 * Reads a bundle back from disk: model.json must satisfy the schema and model.onnx must be the exact
 * bytes the card describes (sha256), so nothing downstream serves or gates a tampered model.
 */
export async function readBundle(dirArg: string, opts: { verifyHash?: boolean } = {}): Promise<LoadedBundle> {
  const dir = resolve(dirArg);
  const cardPath = join(dir, CARD_FILE);
  const modelPath = join(dir, MODEL_FILE);
  let text: string;
  try {
    text = await readFile(cardPath, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (/\.onnx$/i.test(dirArg) && (code === "ENOENT" || code === "ENOTDIR")) {
      throw new UserError(`${dirArg} is a bare ONNX file, not a model bundle`, {
        hint: `package it first: modelship package --model ${dirArg} --data <labelled eval.csv>`,
      });
    }
    throw new UserError(
      code === "ENOENT" || code === "ENOTDIR"
        ? `${dirArg} is not a model bundle (no ${CARD_FILE})`
        : `cannot read ${cardPath}: ${code}`,
      { hint: "pass a directory written by `modelship train`" },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${cardPath} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = modelCardSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new UserError(`${cardPath} does not match the bundle schema: ${issues.join("; ")}`);
  }
  const card = parsed.data;
  try {
    const s = await stat(modelPath);
    if (s.size !== card.model.sizeBytes) {
      throw new UserError(
        `${modelPath} has ${s.size} bytes but ${CARD_FILE} says ${card.model.sizeBytes}; the bundle was modified`,
      );
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`bundle ${dirArg} has no readable ${MODEL_FILE}`);
  }
  if (opts.verifyHash !== false) {
    const actual = await sha256File(modelPath);
    if (actual !== card.model.sha256) {
      throw new UserError(
        `${modelPath} sha256 ${actual.slice(0, 12)}… does not match ${CARD_FILE} (${card.model.sha256.slice(0, 12)}…); the bundle was modified`,
      );
    }
  }
  return { dir, modelPath, card };
}
