import { access, stat } from "node:fs/promises";
import * as ort from "onnxruntime-node";
import type { TensorSpec } from "../contracts/card.js";
import { argmax } from "../metrics/classification.js";
import { ExitCode, firstLine, UserError } from "../util/errors.js";

/**
 * The one place that talks to onnxruntime-node for classifiers (trainer checks, bundle figures,
 * `validate`, the model server). `session.run()` blocks the JS thread, so a process holds one
 * session and keeps ORT's own threads few and idle-sleeping instead of spinning on 2 shared cores.
 */

export const ORT_VERSION: string = ort.env.versions.node ?? ort.env.versions.common;

export interface OpenOptions {
  /** Threads for one operator; 1 keeps latency predictable when several processes share the host. */
  intraOpThreads?: number;
  /** Input to feed; defaults to the model's only input. */
  inputName?: string;
  /** Output holding probabilities [N, C]; defaults to the float tensor output of rank 2. */
  probabilitiesOutput?: string;
  /** Class labels in probability-column order (from model.json, flags, or the data). */
  labels?: readonly string[];
}

export type InputKind = "text" | "features";

export interface ValueSpec {
  name: string;
  isTensor: boolean;
  /** ORT dtype for tensors ("string", "float32", …); "non-tensor" for maps/sequences. */
  dtype: string;
  shape: (number | string)[];
}

export interface Prediction {
  /** One row per input, columns in `labels` order. Views over one buffer. */
  probabilities: Float32Array[];
  /** Predicted label per row (argmax of probabilities, mapped through `labels`). */
  labels: string[];
}

const FLOAT_INPUTS = new Set(["float32", "float64"]);
const TEXT_INPUTS = new Set(["string"]);
const LABEL_DTYPES = new Set(["string", "int64", "int32"]);

export class ClassifierSession {
  readonly path: string;
  readonly inputs: ValueSpec[];
  readonly outputs: ValueSpec[];
  readonly input: ValueSpec;
  readonly inputKind: InputKind;
  readonly probabilitiesOutput: string;
  /** Output with the graph's own predicted label, if it has one. */
  readonly labelOutput: string | undefined;
  /** Class count from the probabilities output shape, when static. */
  readonly classCount: number | undefined;
  /** Features per row for tabular models, when the input shape fixes it. */
  readonly featureCount: number | undefined;
  readonly loadMs: number;
  private labelNames: string[] | undefined;
  private readonly session: ort.InferenceSession;

  private constructor(path: string, session: ort.InferenceSession, loadMs: number, opts: OpenOptions) {
    this.path = path;
    this.session = session;
    this.loadMs = loadMs;
    this.inputs = session.inputMetadata.map(toValueSpec);
    this.outputs = session.outputMetadata.map(toValueSpec);
    this.input = pickInput(this.inputs, opts.inputName, path);
    this.inputKind = TEXT_INPUTS.has(this.input.dtype) ? "text" : "features";
    const probs = pickProbabilities(this.outputs, opts.probabilitiesOutput, path);
    this.probabilitiesOutput = probs.name;
    const last = probs.shape[probs.shape.length - 1];
    this.classCount = typeof last === "number" && last > 0 ? last : undefined;
    this.labelOutput = this.outputs.find(
      (o) => o.isTensor && o.name !== probs.name && LABEL_DTYPES.has(o.dtype),
    )?.name;
    const feat = this.input.shape[this.input.shape.length - 1];
    this.featureCount =
      this.inputKind === "features" && this.input.shape.length >= 2 && typeof feat === "number" && feat > 0
        ? feat
        : undefined;
    if (opts.labels) this.setLabels(opts.labels);
  }

  /** Loads a model file (or its bytes); every failure becomes one readable UserError. */
  static async open(model: string | Uint8Array, opts: OpenOptions = {}): Promise<ClassifierSession> {
    const path = typeof model === "string" ? model : "(in memory)";
    if (typeof model === "string") await assertReadableFile(model, "ONNX model");
    const started = performance.now();
    let session: ort.InferenceSession;
    try {
      const options = sessionOptions(opts.intraOpThreads ?? 1);
      session =
        typeof model === "string"
          ? await ort.InferenceSession.create(model, options)
          : await ort.InferenceSession.create(model, options);
    } catch (err) {
      throw new UserError(`cannot load ONNX model ${path}: ${firstLine(err)}`, {
        hint: "is it an ONNX file (not a pickle/joblib/safetensors file) and complete?",
        cause: err,
      });
    }
    const loadMs = performance.now() - started;
    try {
      return new ClassifierSession(path, session, loadMs, opts);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  get labels(): readonly string[] | undefined {
    return this.labelNames;
  }

  /** Names the probability columns (the model itself rarely carries them in a readable form). */
  setLabels(labels: readonly string[]): void {
    if (this.classCount !== undefined && labels.length !== this.classCount) {
      throw new UserError(
        `model ${this.path} outputs ${this.classCount} class probabilities but ${labels.length} labels were given (${labels.join(", ")})`,
      );
    }
    this.labelNames = [...labels];
  }

  /** Names, dtypes and shapes in the model.json form (tensor values only). */
  tensorSpecs(which: "inputs" | "outputs"): TensorSpec[] {
    return this[which]
      .filter((v) => v.isTensor)
      .map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape }) as TensorSpec);
  }

  /** Probabilities (and the raw label output, when asked) for a batch of texts or feature rows. */
  async predict(batch: readonly string[] | readonly (readonly number[])[]): Promise<Prediction> {
    const { probabilities } = await this.runRaw(batch, false);
    const names = this.labelNames;
    return {
      probabilities,
      labels: probabilities.map((row) => {
        const i = argmax(row);
        return names?.[i] ?? String(i);
      }),
    };
  }

  /** Like predict, but also returns the graph's own label output (used to check label order). */
  async runRaw(
    batch: readonly string[] | readonly (readonly number[])[],
    withLabelOutput = true,
  ): Promise<{ probabilities: Float32Array[]; graphLabels?: string[] }> {
    if (batch.length === 0)
      return withLabelOutput && this.labelOutput
        ? { probabilities: [], graphLabels: [] }
        : { probabilities: [] };
    const feed = this.makeFeed(batch);
    const fetches = [this.probabilitiesOutput];
    if (withLabelOutput && this.labelOutput) fetches.push(this.labelOutput);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run({ [this.input.name]: feed }, fetches);
    } catch (err) {
      throw new UserError(`model ${this.path} failed on the given input: ${firstLine(err)}`, { cause: err });
    } finally {
      feed.dispose?.();
    }
    const probs = result[this.probabilitiesOutput]!;
    const rows = batch.length;
    const data = probs.data as Float32Array | Float64Array;
    const width = rows === 0 ? 0 : data.length / rows;
    if (!Number.isInteger(width) || (this.labelNames && width !== this.labelNames.length)) {
      throw new UserError(
        `model ${this.path} returned ${data.length} probabilities for ${rows} rows (expected ${this.labelNames?.length ?? "a whole number per row"})`,
      );
    }
    const flat = data instanceof Float32Array ? data : Float32Array.from(data);
    const out: { probabilities: Float32Array[]; graphLabels?: string[] } = {
      probabilities: Array.from({ length: rows }, (_, i) => flat.subarray(i * width, (i + 1) * width)),
    };
    if (withLabelOutput && this.labelOutput) {
      out.graphLabels = Array.from(result[this.labelOutput]!.data as ArrayLike<unknown>, (v) => String(v));
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private makeFeed(batch: readonly string[] | readonly (readonly number[])[]): ort.Tensor {
    const n = batch.length;
    const rank = this.input.shape.length;
    if (this.inputKind === "text") {
      if (!batch.every((v) => typeof v === "string")) {
        throw new UserError(
          `model input '${this.input.name}' takes text (string ${fmtShape(this.input.shape)}) but numeric feature rows were given`,
          { hint: "use --text-column instead of --feature-columns" },
        );
      }
      // skl2onnx text models take [N, 1]; modelship's own take [N]
      return new ort.Tensor("string", batch as string[], rank === 2 ? [n, 1] : [n]);
    }
    if (!FLOAT_INPUTS.has(this.input.dtype)) {
      throw new UserError(
        `model input '${this.input.name}' has dtype ${this.input.dtype}; modelship feeds text as string or features as float32/float64`,
        { hint: "export the model with a float (FloatTensorType) or string input" },
      );
    }
    if (!batch.every((v) => Array.isArray(v))) {
      throw new UserError(
        `model input '${this.input.name}' takes numeric features (${this.input.dtype} ${fmtShape(this.input.shape)}) but text was given`,
        { hint: "use --feature-columns a,b,c instead of --text-column" },
      );
    }
    const rows = batch as readonly (readonly number[])[];
    const width = rows[0]?.length ?? this.featureCount ?? 0;
    if (rank !== 2) {
      throw new UserError(
        `model input '${this.input.name}' has shape ${fmtShape(this.input.shape)}; tabular models need [N, features]`,
      );
    }
    if (this.featureCount !== undefined && width !== this.featureCount) {
      throw new UserError(
        `model input '${this.input.name}' expects ${this.featureCount} features per row (shape ${fmtShape(this.input.shape)}) but rows have ${width}`,
      );
    }
    const data = this.input.dtype === "float64" ? new Float64Array(n * width) : new Float32Array(n * width);
    rows.forEach((row, i) => {
      if (row.length !== width)
        throw new UserError(`feature row ${i} has ${row.length} values, expected ${width}`);
      data.set(row, i * width);
    });
    return new ort.Tensor(this.input.dtype as "float32" | "float64", data, [n, width]);
  }
}

function sessionOptions(intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
    // Busy-waiting worker threads burn a core each between requests; sleep instead.
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
  };
}

function toValueSpec(m: ort.InferenceSession.ValueMetadata): ValueSpec {
  if (!m.isTensor) return { name: m.name, isTensor: false, dtype: "non-tensor", shape: [] };
  return {
    name: m.name,
    isTensor: true,
    dtype: m.type,
    shape: m.shape.map((d) => (typeof d === "number" && d < 0 ? "N" : d)),
  };
}

function pickInput(inputs: ValueSpec[], name: string | undefined, path: string): ValueSpec {
  if (name !== undefined) {
    const found = inputs.find((i) => i.name === name);
    if (!found) {
      throw new UserError(
        `model ${path} has no input named '${name}'; its inputs: ${inputs.map(describeValue).join(", ")}`,
      );
    }
    return assertFeedable(found);
  }
  if (inputs.length !== 1) {
    throw new UserError(
      `model ${path} has ${inputs.length} inputs (${inputs.map(describeValue).join(", ")}); modelship feeds one`,
      { hint: "pick it with --input-name, or export the features as one float tensor [N, F]" },
    );
  }
  return assertFeedable(inputs[0]!);
}

function assertFeedable(input: ValueSpec): ValueSpec {
  if (!input.isTensor || !(TEXT_INPUTS.has(input.dtype) || FLOAT_INPUTS.has(input.dtype))) {
    throw new UserError(
      `model input '${input.name}' is ${input.isTensor ? `${input.dtype} ${fmtShape(input.shape)}` : "not a tensor"}; modelship feeds text as string [N] or features as float [N, F]`,
    );
  }
  return input;
}

function pickProbabilities(outputs: ValueSpec[], name: string | undefined, path: string): ValueSpec {
  const zipMap = outputs.find((o) => !o.isTensor);
  const zipMapHint =
    'export probabilities as a plain tensor: with skl2onnx, convert_sklearn(model, ..., options={id(model): {"zipmap": False}})';
  if (name !== undefined) {
    const found = outputs.find((o) => o.name === name);
    if (!found) {
      throw new UserError(
        `model ${path} has no output named '${name}'; its outputs: ${outputs.map(describeValue).join(", ")}`,
      );
    }
    if (!found.isTensor) {
      throw new UserError(`model output '${name}' is not a tensor (a ZipMap / sequence of maps)`, {
        hint: zipMapHint,
      });
    }
    return found;
  }
  const floats = outputs.filter((o) => o.isTensor && FLOAT_INPUTS.has(o.dtype));
  // rank 2 = [N, classes]; a graph without shape information reports [] and is taken at its word
  const ranked = floats.filter((o) => o.shape.length === 2);
  const candidates = ranked.length > 0 ? ranked : floats.filter((o) => o.shape.length === 0);
  if (candidates.length === 0) {
    if (zipMap) {
      throw new UserError(
        `model ${path} returns probabilities in output '${zipMap.name}', which is not a tensor (a ZipMap / sequence of maps)`,
        { hint: zipMapHint },
      );
    }
    throw new UserError(
      `model ${path} has no probabilities output (a float tensor [N, classes]); its outputs: ${outputs.map(describeValue).join(", ")}`,
    );
  }
  return candidates.find((c) => /prob/i.test(c.name)) ?? candidates[0]!;
}

function describeValue(v: ValueSpec): string {
  return v.isTensor ? `${v.name} (${v.dtype} ${fmtShape(v.shape)})` : `${v.name} (non-tensor)`;
}

function fmtShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(", ")}]`;
}

/** Missing, directory, or unreadable → one clear message (exit 2). */
export async function assertReadableFile(path: string, what: string): Promise<void> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new UserError(`${what} ${path} is not a file`);
    await access(path);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UserError(`${what} not found: ${path}`, { exitCode: ExitCode.usage });
    throw new UserError(`cannot read ${what} ${path}: ${code ?? firstLine(err)}`, { cause: err });
  }
}
