import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Engine } from "../../engine/engine.js";
import { MODEL_DOCKERFILE } from "../../image/context.js";
import { MODEL_LABELS } from "../../image/labels.js";
import { serverImageKey } from "../../image/server.js";
import { atomicWriteJson } from "../../util/fs.js";

/**
 * Images the demo built before, so a second run skips the (slow) image build: keyed by everything that
 * goes into an image (the server image's content key, the model Dockerfile, the model's sha256) and
 * re-checked against the engine and the image's model label before use.
 */
const cacheSchema = z.record(z.string(), z.string());

export async function imageKey(root: string, baseImage: string, modelSha256: string): Promise<string> {
  const hash = createHash("sha256");
  hash.update(modelSha256);
  hash.update((await serverImageKey({ appRoot: root, baseImage, baseImageId: null })).key);
  hash.update(await readFile(join(root, MODEL_DOCKERFILE)));
  return hash.digest("hex").slice(0, 24);
}

export class ImageCache {
  constructor(private readonly file: string) {}

  private async read(): Promise<Record<string, string>> {
    try {
      const parsed = cacheSchema.safeParse(JSON.parse(await readFile(this.file, "utf8")));
      return parsed.success ? parsed.data : {};
    } catch {
      return {};
    }
  }

  /** A cached image that still exists and still carries the model it was built for. */
  async lookup(engine: Engine, key: string, modelSha256: string): Promise<string | undefined> {
    const ref = (await this.read())[key];
    if (!ref) return undefined;
    const info = await engine.inspectImage(ref);
    return info && info.labels[MODEL_LABELS.sha256] === modelSha256 ? ref : undefined;
  }

  async remember(key: string, ref: string): Promise<void> {
    await atomicWriteJson(this.file, { ...(await this.read()), [key]: ref });
  }
}
