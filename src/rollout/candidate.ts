import { readBundle } from "../bundle/read.js";
import type { Engine } from "../engine/engine.js";
import { MODEL_LABELS } from "../image/labels.js";
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
  const version = info.labels[MODEL_LABELS.version];
  const name = info.labels[MODEL_LABELS.name];
  const sha256 = info.labels[MODEL_LABELS.sha256];
  if (!version || !name || !sha256 || version === "unknown") {
    throw new UserError(`image ${ref} carries no modelship model labels (${MODEL_LABELS.version}, …)`, {
      exitCode: ExitCode.usage,
      hint: "deploy images built by `modelship build`",
    });
  }
  const digest = info.repoDigests[0]?.split("@")[1] ?? info.id;
  return { version, image: { ref, digest }, model: { name, version, sha256 }, card: null };
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
