import { join } from "node:path";
import { MODEL_FILE } from "../contracts/card.js";
import type { GateCard } from "./card.js";
import type { GoldenResult } from "./verdict.js";

/**
 * Re-runs the bundle's golden examples under onnxruntime-node and compares the probabilities with the
 * ones recorded at training time. onnxruntime-node is imported lazily: it is a native module the
 * bundled actions resolve from the workspace's node_modules, and a metrics-only gate never needs it.
 */
export async function checkGoldenParity(
  bundleDir: string | undefined,
  card: GateCard,
  tolerance: number,
): Promise<GoldenResult> {
  if (!bundleDir)
    return { status: "unavailable", reason: `no ${MODEL_FILE} next to the candidate's model.json` };
  const golden = card.golden ?? [];
  if (golden.length === 0)
    return { status: "unavailable", reason: "candidate model.json has no golden examples" };
  const io = card.io;
  const input = io?.inputs?.[0];
  if (!io || !input || !io.probabilitiesOutput) {
    return { status: "unavailable", reason: "candidate model.json has no io signature" };
  }

  let ort: typeof import("onnxruntime-node");
  try {
    ort = await import("onnxruntime-node");
  } catch (err) {
    // The bundled actions' loader already says where it looked and what to run.
    const message = (err as Error).message.split("\n")[0] ?? "";
    return {
      status: "unavailable",
      reason: message.includes("not installed")
        ? message
        : `cannot load onnxruntime-node (${message}) — run \`npm ci\` in the workspace first`,
    };
  }

  let session: import("onnxruntime-node").InferenceSession;
  try {
    session = await ort.InferenceSession.create(join(bundleDir, MODEL_FILE), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
  } catch (err) {
    return {
      status: "unavailable",
      reason: `cannot load ${MODEL_FILE}: ${(err as Error).message.split("\n")[0]}`,
    };
  }

  try {
    const n = golden.length;
    let tensor: import("onnxruntime-node").Tensor;
    if (input.dtype === "string") {
      const texts = golden.map((g) => (typeof g.input === "string" ? g.input : ""));
      tensor = new ort.Tensor("string", texts, input.shape.length === 2 ? [n, 1] : [n]);
    } else {
      const width = Array.isArray(golden[0]!.input) ? golden[0]!.input.length : 0;
      const data = new Float32Array(n * width);
      golden.forEach((g, i) => {
        if (Array.isArray(g.input)) data.set(g.input, i * width);
      });
      tensor = new ort.Tensor("float32", data, [n, width]);
    }
    const out = await session.run({ [input.name]: tensor }, [io.probabilitiesOutput]);
    const probs = out[io.probabilitiesOutput]?.data as Float32Array | Float64Array | undefined;
    if (!probs) return { status: "unavailable", reason: `model has no output ${io.probabilitiesOutput}` };
    const classes = probs.length / n;
    let maxAbsDiff = 0;
    let mismatches = 0;
    let firstMismatch: string | undefined;
    golden.forEach((g, i) => {
      let worst = 0;
      g.expected.probabilities.forEach((p, j) => {
        worst = Math.max(worst, Math.abs(p - (probs[i * classes + j] ?? Number.NaN)));
      });
      if (g.expected.probabilities.length !== classes) worst = Number.POSITIVE_INFINITY;
      if (Number.isNaN(worst)) worst = Number.POSITIVE_INFINITY;
      maxAbsDiff = Math.max(maxAbsDiff, worst);
      if (worst > tolerance) {
        mismatches += 1;
        firstMismatch ??= `example ${i + 1} differs by ${worst === Number.POSITIVE_INFINITY ? "shape" : worst.toExponential(2)}`;
      }
    });
    return {
      status: "checked",
      examples: n,
      mismatches,
      maxAbsDiff,
      ...(firstMismatch ? { firstMismatch } : {}),
    };
  } catch (err) {
    return {
      status: "unavailable",
      reason: `running golden examples failed: ${(err as Error).message.split("\n")[0]}`,
    };
  } finally {
    await session.release().catch(() => {});
  }
}
