import { type GitHub, gitHubError, httpStatus } from "./client.js";

/**
 * Downloads one asset of a release by tag — how a GitHub-hosted PR job gets the production model.json
 * the deploy workflow published. Returns null when the release or asset does not exist yet (first deploy).
 */
export async function downloadReleaseAsset(
  gh: GitHub,
  tag: string,
  assetName: string,
): Promise<string | null> {
  const bytes = await downloadReleaseAssetBytes(gh, tag, assetName);
  return bytes === null ? null : new TextDecoder().decode(bytes);
}

/** Name of the release asset holding the whole production bundle (model.json + model.onnx). */
export const BUNDLE_ASSET = "model-bundle.tar.gz";

/** Like downloadReleaseAsset, for binary assets (the bundle archive). */
export async function downloadReleaseAssetBytes(
  gh: GitHub,
  tag: string,
  assetName: string,
): Promise<Uint8Array | null> {
  return (await downloadFirstReleaseAsset(gh, tag, [assetName]))?.bytes ?? null;
}

/**
 * The first of `names` (in order of preference) the release carries, with one lookup of the release:
 * e.g. the bundle archive, else the older model.json-only asset. null = no such release or asset.
 */
export async function downloadFirstReleaseAsset(
  gh: GitHub,
  tag: string,
  names: readonly string[],
): Promise<{ name: string; bytes: Uint8Array } | null> {
  let assetId: number | undefined;
  let assetName = "";
  try {
    const { data } = await gh.octokit.rest.repos.getReleaseByTag({ owner: gh.owner, repo: gh.repo, tag });
    for (const name of names) {
      const found = data.assets.find((a) => a.name === name);
      if (found) {
        assetId = found.id;
        assetName = name;
        break;
      }
    }
  } catch (err) {
    if (httpStatus(err) === 404) return null;
    throw gitHubError(`reading release ${tag}`, err);
  }
  if (assetId === undefined) return null;
  try {
    const res = await gh.octokit.request("GET /repos/{owner}/{repo}/releases/assets/{asset_id}", {
      owner: gh.owner,
      repo: gh.repo,
      asset_id: assetId,
      headers: { accept: "application/octet-stream" },
      request: { parseSuccessResponseBody: false },
    });
    return {
      name: assetName,
      bytes: new Uint8Array(await new Response(res.data as unknown as ReadableStream).arrayBuffer()),
    };
  } catch (err) {
    throw gitHubError(`downloading ${assetName} from release ${tag}`, err);
  }
}
