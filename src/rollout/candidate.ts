import { readBundle } from "../bundle/read.js";
import type { Engine } from "../engine/engine.js";
import { readModelLabels } from "../image/labels.js";
import { ExitCode, UserError } from "../util/errors.js";
import type { Candidate } from "./ports.js";

/** A model image built by `modelship build`: its labels name the model; the card is read at smoke time. */
export async function candidateFromImage(engine: Engine, ref: string): Promise<Candidate> {
  const info = await engine.inspectImage(ref);
  if (!info) {
    throw new UserError(`image ${ref} is not on this host`, {
      exitCode: ExitCode.usage,
      hint: "build it with `modelship build --model <bundle>` or pull it first",
    });
  }
  // Checked against strict patterns before anything runs; checked again against /model-info once started.
  const model = readModelLabels(info.labels, `image ${ref}`);
  const digest = info.repoDigests[0]?.split("@")[1] ?? info.id;
  return { version: model.version, image: { ref, digest }, model, card: null };
}

/**
 * A bundle directory: validated (schema + model hash) before anything is built. The image ref is the
 * one the build will tag first (`<repository>:<version>`), so the ledger entry is valid from the start.
 */
export async function candidateFromBundle(
  dir: string,
  repository?: string,
): Promise<Candidate & { bundleDir: string }> {
  const { card } = await readBundle(dir);
  return {
    version: card.version,
    image: { ref: `${repository ?? `modelship/${card.name}`}:${card.version}`, digest: null },
    model: { name: card.name, version: card.version, sha256: card.model.sha256 },
    card,
    bundleDir: dir,
  };
}
