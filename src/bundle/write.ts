import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { access, constants, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  BUNDLE_SCHEMA_VERSION,
  CARD_FILE,
  MODEL_FILE,
  type ModelCard,
  modelCardSchema,
  type RuntimeFigures,
} from "../contracts/card.js";
import { type MeasureOptions, type ModelInput, measureRuntime } from "../onnx/runtime.js";
import { ExitCode, UserError } from "../util/errors.js";
import { sha256 } from "../util/fs.js";
import { gitState } from "./git.js";
import { bundleDirName, makeVersion } from "./version.js";

/** model.json fields the caller provides; identity, hashes, git state and timestamps are filled here. */
export type CardContent = Omit<
  ModelCard,
  "schemaVersion" | "name" | "version" | "createdAt" | "git" | "model" | "runtime"
>;

/**
 * A bundle being built in a hidden temp directory next to its final place. `commit()` renames it
 * into `<outDir>/<name>-<version>/` (a reader sees a complete bundle or none); `discard()` removes
 * it and is safe to call after commit, so `try { … } finally { discard() }` leaves nothing behind.
 */
export class StagedBundle {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  readonly tmp: string;
  readonly modelPath: string;
  readonly modelSha256: string;
  readonly modelBytes: number;
  private readonly outDir: string;
  private readonly createdAt: Date;
  private committed = false;
  /** Ctrl-C or a runner cancelling the job must not leave a half-written bundle either. */
  private readonly onSignal = (signal: NodeJS.Signals) => {
    rmSync(this.tmp, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };

  private constructor(name: string, outDir: string, onnx: Uint8Array, createdAt: Date) {
    this.name = name;
    this.outDir = outDir;
    this.createdAt = createdAt;
    this.modelSha256 = sha256(onnx);
    this.modelBytes = onnx.byteLength;
    this.version = makeVersion(this.modelSha256, createdAt);
    this.dir = join(outDir, bundleDirName(name, this.version));
    this.tmp = join(
      outDir,
      `.${bundleDirName(name, this.version)}.${randomBytes(4).toString("hex")}.partial`,
    );
    this.modelPath = join(this.tmp, MODEL_FILE);
  }

  static async create(opts: {
    name: string;
    outDir: string;
    onnx: Uint8Array;
    now?: Date;
  }): Promise<StagedBundle> {
    const outDir = resolve(opts.outDir);
    await prepareOutDir(outDir);
    const staged = new StagedBundle(opts.name, outDir, opts.onnx, opts.now ?? new Date());
    await assertAbsent(staged.dir);
    process.once("SIGINT", staged.onSignal);
    process.once("SIGTERM", staged.onSignal);
    try {
      await mkdir(staged.tmp);
      await writeSynced(staged.modelPath, opts.onnx);
    } catch (err) {
      await staged.discard();
      throw err;
    }
    return staged;
  }

  /** Runtime figures of the staged model.onnx, measured with onnxruntime-node. */
  measureRuntime(samples: readonly ModelInput[], opts: MeasureOptions = {}): Promise<RuntimeFigures> {
    return measureRuntime(this.modelPath, samples, opts);
  }

  async commit(content: CardContent, runtime: RuntimeFigures): Promise<{ dir: string; card: ModelCard }> {
    const card: ModelCard = modelCardSchema.parse({
      schemaVersion: BUNDLE_SCHEMA_VERSION,
      name: this.name,
      version: this.version,
      createdAt: this.createdAt.toISOString(),
      git: await gitState(),
      model: { file: MODEL_FILE, sha256: this.modelSha256, sizeBytes: this.modelBytes },
      ...content,
      runtime,
    } satisfies ModelCard);
    await writeSynced(join(this.tmp, CARD_FILE), `${JSON.stringify(card, null, 2)}\n`);
    await syncDir(this.tmp);
    // rename() would replace an empty directory of the same name; bundles are never replaced.
    await assertAbsent(this.dir);
    await rename(this.tmp, this.dir);
    this.committed = true;
    this.removeSignalHandlers();
    await syncDir(this.outDir);
    return { dir: this.dir, card };
  }

  async discard(): Promise<void> {
    this.removeSignalHandlers();
    if (!this.committed) await rm(this.tmp, { recursive: true, force: true });
  }

  private removeSignalHandlers(): void {
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
  }
}

/** Creates the output directory if needed and fails early, with one clear line, if it is not writable. */
export async function prepareOutDir(outDir: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
    const s = await stat(outDir);
    if (!s.isDirectory()) throw new UserError(`output ${outDir} is not a directory`);
    await access(outDir, constants.W_OK | constants.X_OK);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "ENOTDIR" || code === "EEXIST"
          ? "a path component is a file"
          : (code ?? String(err));
    throw new UserError(`output directory ${outDir} is not writable (${why})`, {
      exitCode: ExitCode.environment,
      hint: "pick another --out or fix its permissions",
    });
  }
}

async function assertAbsent(dir: string): Promise<void> {
  try {
    await stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  throw new UserError(`bundle ${dir} already exists; bundles are immutable and never overwritten`);
}

async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, "wx");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  } finally {
    await handle.close();
  }
}
