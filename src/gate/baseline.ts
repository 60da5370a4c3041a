import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { CARD_FILE } from "../contracts/card.js";
import { connectGitHub } from "../github/client.js";
import { BUNDLE_ASSET, downloadFirstReleaseAsset } from "../github/releases.js";
import { Ledger, resolveStateDir } from "../ledger/ledger.js";
import type { LedgerData } from "../ledger/schema.js";
import { Router } from "../router/router.js";
import { ExitCode, UserError } from "../util/errors.js";
import { type GateCard, loadCard, parseCard } from "./card.js";
import type { GateSubject } from "./verdict.js";

/** The production model to compare against, or null with the plain reason (first deploy). */
export interface Baseline {
  subject: GateSubject | null;
  /** How it was found, or why there is none — printed in every report. */
  note: string;
}

/** The part of `modelship status --json` the gate needs (issue 4's stable keys, plus optional paths). */
export const statusSchema = z.object({
  edge: z.object({ url: z.string() }).partial().optional(),
  versions: z.array(
    z
      .object({
        version: z.string(),
        role: z.string(),
        weight: z.number().optional(),
        image: z.string().optional(),
        /** Optional: where the ledger keeps the bundle / card for this version. */
        bundle: z.string().optional(),
        modelJson: z.string().optional(),
        /** The running container; its own /model-info is the exact card of this version. */
        container: z
          .object({
            hostPort: z.number().int().positive(),
            id: z.string().optional(),
            name: z.string().optional(),
          })
          .loose()
          .nullable()
          .optional(),
      })
      .loose(),
  ),
});
export type HostStatus = z.infer<typeof statusSchema>;

export function noBaseline(why: string): Baseline {
  return {
    subject: null,
    note: `No production baseline (${why}): first deploy — only absolute rules apply.`,
  };
}

/**
 * `--baseline <path>`: a bundle directory, a model.json, or a saved `modelship status --json` output.
 * The user named it, so a missing file is an error rather than "first deploy".
 */
export async function baselineFromPath(path: string): Promise<Baseline> {
  const info = await stat(path).catch(() => undefined);
  if (!info)
    throw new UserError(`baseline ${path} does not exist`, {
      hint: "pass a bundle, model.json or status JSON",
    });
  if (info.isFile()) {
    const text = await readFile(path, "utf8");
    const json = safeJson(text);
    if (json && typeof json === "object" && "versions" in json) {
      return baselineFromStatus(parseStatus(json, path), `status file ${path}`);
    }
  }
  const loaded = await loadCard(path, "baseline");
  return {
    subject: { card: loaded.card, source: loaded.source, bundleDir: loaded.bundleDir },
    note: `Baseline: ${loaded.source}.`,
  };
}

/**
 * `--baseline-from-host`: reads this host's deploy ledger in-process (the same document
 * `modelship status --json` prints, without the live rates) and asks its stable version for the card.
 */
export async function baselineFromHost(options: { stateDir?: string }): Promise<Baseline> {
  const stateDir = resolveStateDir(options.stateDir);
  let ledger: LedgerData;
  try {
    ledger = await new Ledger(stateDir).read();
  } catch (err) {
    throw new UserError(`cannot read the host ledger: ${(err as Error).message}`, {
      exitCode: ExitCode.environment,
    });
  }
  const status: HostStatus = {
    versions: ledger.versions.map((v) => ({
      version: v.version,
      role: v.role,
      weight: v.weight,
      image: v.image.ref,
      container: v.container,
    })),
  };
  // The edge only matters when the stable version has no container port of its own.
  const router = await Router.open(stateDir).catch(() => undefined);
  if (router) status.edge = { url: router.edgeUrl() };
  return baselineFromStatus(status, "host ledger");
}

/**
 * Picks the stable version from a status document and finds its model card: a bundle/model.json path
 * when one is recorded, else the serving container's `/model-info` (its card summary with the metrics).
 */
export async function baselineFromStatus(
  status: HostStatus,
  where: string,
  copyBundle: (container: string) => Promise<string | undefined> = copyBundleFromContainer,
): Promise<Baseline> {
  const stable = status.versions.find((v) => v.role === "stable");
  if (!stable) return noBaseline(`${where} has no stable version`);
  const path = stable.modelJson ?? (stable.bundle ? join(stable.bundle, CARD_FILE) : undefined);
  if (path) {
    const loaded = await loadCard(path, "baseline");
    return {
      subject: { card: loaded.card, source: `${where}: ${stable.version}`, bundleDir: loaded.bundleDir },
      note: `Baseline: production ${stable.version} from the ${where}.`,
    };
  }
  // The image carries the whole bundle under /model: copy it out of the stable container, so the
  // gate can score the production model itself. Without an engine, the card from /model-info.
  const id = stable.container?.id ?? stable.container?.name;
  const copied = typeof id === "string" ? await copyBundle(id).catch(() => undefined) : undefined;
  if (copied) {
    const loaded = await loadCard(copied, "baseline").catch(() => undefined);
    if (loaded?.bundleDir && (!loaded.card.version || loaded.card.version === stable.version)) {
      return {
        subject: { card: loaded.card, source: `${where}: ${stable.version}`, bundleDir: loaded.bundleDir },
        note: `Baseline: production ${stable.version} (bundle copied from its container).`,
      };
    }
  }
  // Ask the stable container directly (exactly this version); the edge only as a fallback, since
  // during a rollout it may answer from the canary.
  const port = stable.container?.hostPort;
  const base = port ? `http://127.0.0.1:${port}` : status.edge?.url;
  if (!base)
    throw new UserError(
      `${where}: stable ${stable.version} has no bundle path, container or edge URL to ask`,
    );
  const card = await fetchModelInfo(base);
  if (card.version && card.version !== stable.version) {
    throw new UserError(
      `${where}: ${base} serves ${card.version} but the ledger's stable version is ${stable.version} — a rollout is in progress, try again when it ends`,
      { exitCode: ExitCode.busy },
    );
  }
  return {
    subject: { card, source: `${where}: ${stable.version}` },
    note: `Baseline: production ${stable.version} (metrics from ${base}/model-info).`,
  };
}

async function fetchModelInfo(edge: string): Promise<GateCard> {
  const url = `${edge.replace(/\/$/, "")}/model-info`;
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (err) {
    throw new UserError(`cannot read the production model from ${url}: ${(err as Error).message}`, {
      exitCode: ExitCode.environment,
    });
  }
  return parseCard(text, url);
}

/** A production model.json fetched from GitHub (release asset / artifact); null body = none published yet. */
/**
 * Copies /model (model.json + model.onnx, see serving/Dockerfile) out of a container into a temp dir
 * with the container engine's CLI; undefined when there is no engine or the copy fails.
 */
export async function copyBundleFromContainer(container: string): Promise<string | undefined> {
  const { Engine } = await import("../engine/engine.js");
  const dir = await mkdtemp(join(tmpdir(), "modelship-baseline-"));
  try {
    const engine = await Engine.connect();
    await engine.run("copying the production bundle", ["cp", `${container}:/model/.`, dir]);
    return dir;
  } catch {
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
}

/**
 * The production bundle published as a release asset (a .tar.gz of the bundle directory), unpacked
 * into a temp dir with the system tar; null body = none published yet.
 */
export async function baselineFromArchive(bytes: Uint8Array, where: string): Promise<Baseline> {
  const dir = await mkdtemp(join(tmpdir(), "modelship-baseline-"));
  const archive = join(dir, "bundle.tar.gz");
  await writeFile(archive, bytes);
  try {
    await promisify(execFile)("tar", ["-xzf", archive, "-C", dir, "--no-same-owner"]);
  } catch (err) {
    throw new UserError(`${where} is not a readable .tar.gz: ${(err as Error).message.split("\n")[0]}`, {
      exitCode: ExitCode.environment,
    });
  }
  const cardDir = (await stat(join(dir, CARD_FILE)).catch(() => undefined))
    ? dir
    : join(dir, (await readdir(dir, { withFileTypes: true })).find((e) => e.isDirectory())?.name ?? "");
  const loaded = await loadCard(cardDir, "baseline");
  return {
    subject: { card: loaded.card, source: where, bundleDir: loaded.bundleDir },
    note: `Baseline: production ${loaded.card.version ?? "model"} from ${where}.`,
  };
}

export function baselineFromText(text: string | null, where: string): Baseline {
  if (text === null) return noBaseline(`nothing published at ${where}`);
  const card = parseCard(text, where);
  return {
    subject: { card, source: where },
    note: `Baseline: production ${card.version ?? "model"} from ${where}.`,
  };
}

function parseStatus(json: unknown, where: string): HostStatus {
  const parsed = statusSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UserError(`${where}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Exactly one baseline source (or none = first deploy). */
export async function resolveBaseline(flags: {
  baseline?: string | undefined;
  baselineFromHost?: boolean | undefined;
  baselineRelease?: string | undefined;
  stateDir?: string | undefined;
  token?: string | undefined;
}): Promise<Baseline> {
  const given = [flags.baseline, flags.baselineFromHost, flags.baselineRelease].filter(Boolean).length;
  if (given > 1) {
    throw new UserError("choose one baseline source: --baseline, --baseline-from-host or --baseline-release");
  }
  if (flags.stateDir && !flags.baselineFromHost)
    throw new UserError("--state-dir only applies with --baseline-from-host");
  if (flags.baseline) return baselineFromPath(flags.baseline);
  if (flags.baselineFromHost)
    return baselineFromHost({ ...(flags.stateDir ? { stateDir: flags.stateDir } : {}) });
  if (flags.baselineRelease) {
    const gh = connectGitHub({ token: flags.token ?? process.env.GITHUB_TOKEN ?? "" });
    // The whole bundle (deploy.yml publishes it) lets the gate score production itself; releases
    // published before that carry only model.json: card-only, unpaired comparison.
    const asset = await downloadFirstReleaseAsset(gh, flags.baselineRelease, [BUNDLE_ASSET, CARD_FILE]);
    if (asset?.name === BUNDLE_ASSET)
      return baselineFromArchive(asset.bytes, `release ${flags.baselineRelease} (${BUNDLE_ASSET})`);
    const text = asset ? new TextDecoder().decode(asset.bytes) : null;
    return baselineFromText(text, `release ${flags.baselineRelease} (${CARD_FILE})`);
  }
  return {
    subject: null,
    note: "No production baseline given: first deploy — only absolute rules apply.",
  };
}
