import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";

/**
 * One line of the prediction log. Length and token counts are stored even when the text is only
 * hashed, so drift can be recomputed from the log (`modelship drift --log`) without the text.
 */
export const predictionLogRecordSchema = z.object({
  t: z.string(),
  version: z.string(),
  label: z.string(),
  confidence: z.number().min(0).max(1),
  probabilities: z.array(z.number()),
  /** Code points of the text input (text models). */
  length: z.number().int().nonnegative().optional(),
  tokens: z.number().int().nonnegative().optional(),
  oov: z.number().int().nonnegative().optional(),
  text: z.string().optional(),
  sha256: z.string().optional(),
  features: z.array(z.number()).optional(),
});
export type PredictionLogRecord = z.infer<typeof predictionLogRecordSchema>;

export function hashText(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Append-only JSONL with size-based rotation: `file` → `file.1` → … → `file.<files-1>`, the oldest
 * deleted, so the log never takes more than about files × maxBytes on disk. One writer (the server's
 * primary process) — workers send it their sampled records.
 */
export class RotatingLog {
  private readonly file: string;
  private readonly maxBytes: number;
  private readonly files: number;
  private bytes: number;

  constructor(options: { file: string; maxBytes: number; files: number }) {
    this.file = options.file;
    this.maxBytes = options.maxBytes;
    this.files = options.files;
    mkdirSync(dirname(this.file), { recursive: true });
    this.bytes = existsSync(this.file) ? statSync(this.file).size : 0;
  }

  append(records: readonly PredictionLogRecord[]): void {
    if (records.length === 0) return;
    const text = `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
    const size = Buffer.byteLength(text);
    if (this.bytes > 0 && this.bytes + size > this.maxBytes) this.rotate();
    appendFileSync(this.file, text);
    this.bytes += size;
  }

  private rotate(): void {
    if (this.files === 1) {
      rmSync(this.file, { force: true });
    } else {
      rmSync(`${this.file}.${this.files - 1}`, { force: true });
      for (let i = this.files - 2; i >= 1; i--) {
        if (existsSync(`${this.file}.${i}`)) renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      }
      renameSync(this.file, `${this.file}.1`);
    }
    this.bytes = 0;
  }
}
