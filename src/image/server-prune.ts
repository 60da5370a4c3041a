import type { ImageLayers } from "../engine/engine.js";

/**
 * The pure half of removing old server images: the engine's images (tags and layers) → which
 * `<repository>:<key>` tags to remove and which to keep, and why. `pruneServerImages` (server.ts)
 * executes it under the per-key locks. No I/O here.
 *
 * A server image is kept while a remaining image depends on it: one whose layers start with all of
 * its layers (built `FROM` it, like every model image). A tag whose image also carries another tag that
 * stays is only an alias: removing it untags, the image and everything built from it stay.
 */

export interface PrunePlan {
  /** Tags to remove (without force), with why that is safe. */
  remove: { ref: string; why: string }[];
  /** Older server tags that stay, with why. */
  keep: { ref: string; reason: string }[];
}

const KEY = /^[0-9a-f]{16}$/;

/** Whether `child` is built on `parent`: it has every layer of `parent`, in order, and more. */
export function builtOn(child: ImageLayers, parent: ImageLayers): boolean {
  if (child.id === parent.id || parent.layers.length === 0 || child.layers.length <= parent.layers.length)
    return false;
  return parent.layers.every((layer, i) => child.layers[i] === layer);
}

export function planServerPrune(
  images: ImageLayers[],
  options: { repository: string; keep: string[] },
): PrunePlan {
  const { repository } = options;
  const isCandidate = (tag: string) => {
    if (!tag.startsWith(`${repository}:`)) return false;
    const key = tag.slice(repository.length + 1);
    return KEY.test(key) && !options.keep.includes(tag) && !options.keep.includes(key);
  };
  const plan: PrunePlan = { remove: [], keep: [] };
  for (const image of images) {
    const candidates = [...new Set(image.tags.filter(isCandidate))].sort();
    if (candidates.length === 0) continue;
    const staying = image.tags.filter((t) => !candidates.includes(t));
    if (staying.length > 0) {
      for (const ref of candidates) plan.remove.push({ ref, why: `an alias of ${staying[0]}` });
      continue;
    }
    if (image.layers.length === 0) {
      for (const ref of candidates) plan.keep.push({ ref, reason: "its layers are unknown" });
      continue;
    }
    const dependents = images.filter((other) => builtOn(other, image));
    if (dependents.length > 0) {
      const named = dependents.find((d) => d.tags.length > 0)?.tags[0] ?? dependents[0]!.id.slice(0, 19);
      const more = dependents.length > 1 ? ` and ${dependents.length - 1} more` : "";
      for (const ref of candidates)
        plan.keep.push({ ref, reason: `still in use: ${named}${more} built from it` });
      continue;
    }
    for (const ref of candidates) plan.remove.push({ ref, why: "no image is built from it" });
  }
  return plan;
}
