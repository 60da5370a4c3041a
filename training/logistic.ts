import { minimizeLbfgs } from "./lbfgs.js";
import type { SparseMatrix } from "./tfidf.js";

export interface LogisticOptions {
  /** Inverse regularisation strength, as in scikit-learn. */
  C: number;
  classWeight: "balanced" | "none";
  maxIterations: number;
  tolerance: number;
  onIteration?: (iteration: number, loss: number) => void;
}

/**
 * L2-regularised logistic regression. Two classes use one weight vector (scikit-learn's binary model,
 * P(class 1) = sigmoid(x·w + b)); more classes use the multinomial (softmax) model. The intercept is not
 * penalised. `logits()` returns one column per class; for two classes column 0 is the constant 0, which
 * makes softmax over the columns equal to the sigmoid — one formula for training and the ONNX graph.
 */
export class LogisticRegression {
  private constructor(
    readonly classes: number,
    readonly features: number,
    /** Feature-major: weights[j * outputs + k]. */
    readonly weights: Float64Array,
    readonly intercept: Float64Array,
    readonly iterations: number,
    readonly converged: boolean,
  ) {}

  get outputs(): number {
    return this.classes === 2 ? 1 : this.classes;
  }

  static fit(X: SparseMatrix, y: Int32Array, classes: number, options: LogisticOptions): LogisticRegression {
    const K = classes === 2 ? 1 : classes;
    const d = X.cols;
    const n = X.rows;
    const sw = sampleWeights(y, classes, options.classWeight);
    let S = 0;
    for (let i = 0; i < n; i++) S += sw[i]!;
    const l2 = 1 / (options.C * S);
    const z = new Float64Array(K);
    const r = new Float64Array(K);

    const objective = (theta: Float64Array, grad: Float64Array): number => {
      grad.fill(0);
      let loss = 0;
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < K; k++) z[k] = theta[d * K + k]!;
        for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) {
          const base = X.indices[p]! * K;
          const v = X.values[p]!;
          for (let k = 0; k < K; k++) z[k] = z[k]! + v * theta[base + k]!;
        }
        const w = sw[i]! / S;
        const yi = y[i]!;
        if (K === 1) {
          const zi = z[0]!;
          // softplus(z) - y·z, computed without overflow
          loss += w * ((zi > 0 ? zi + Math.log1p(Math.exp(-zi)) : Math.log1p(Math.exp(zi))) - yi * zi);
          r[0] = w * (sigmoid(zi) - yi);
        } else {
          let max = z[0]!;
          for (let k = 1; k < K; k++) if (z[k]! > max) max = z[k]!;
          let sum = 0;
          for (let k = 0; k < K; k++) sum += Math.exp(z[k]! - max);
          const lse = max + Math.log(sum);
          loss += w * (lse - z[yi]!);
          for (let k = 0; k < K; k++) r[k] = w * (Math.exp(z[k]! - lse) - (k === yi ? 1 : 0));
        }
        for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) {
          const base = X.indices[p]! * K;
          const v = X.values[p]!;
          for (let k = 0; k < K; k++) grad[base + k] = grad[base + k]! + v * r[k]!;
        }
        for (let k = 0; k < K; k++) grad[d * K + k] = grad[d * K + k]! + r[k]!;
      }
      let penalty = 0;
      for (let j = 0; j < d * K; j++) {
        penalty += theta[j]! * theta[j]!;
        grad[j] = grad[j]! + l2 * theta[j]!;
      }
      return loss + 0.5 * l2 * penalty;
    };

    const result = minimizeLbfgs(objective, new Float64Array((d + 1) * K), {
      maxIterations: options.maxIterations,
      gradientTolerance: options.tolerance,
      ...(options.onIteration ? { onIteration: options.onIteration } : {}),
    });
    return new LogisticRegression(
      classes,
      d,
      result.x.slice(0, d * K),
      result.x.slice(d * K),
      result.iterations,
      result.converged,
    );
  }

  /** Dense weight matrix [features × classes] and bias [classes] of `logits()`, row-major. */
  logitParameters(): { weights: Float64Array; bias: Float64Array } {
    const C = this.classes;
    const K = this.outputs;
    if (K === C) return { weights: this.weights, bias: this.intercept };
    const weights = new Float64Array(this.features * 2);
    for (let j = 0; j < this.features; j++) weights[j * 2 + 1] = this.weights[j]!;
    return { weights, bias: Float64Array.of(0, this.intercept[0]!) };
  }

  predictProba(X: SparseMatrix): number[][] {
    const K = this.outputs;
    const out: number[][] = [];
    for (let i = 0; i < X.rows; i++) {
      const z = Array.from(this.intercept);
      for (let p = X.indptr[i]!; p < X.indptr[i + 1]!; p++) {
        const base = X.indices[p]! * K;
        const v = X.values[p]!;
        for (let k = 0; k < K; k++) z[k] = z[k]! + v * this.weights[base + k]!;
      }
      if (K === 1) {
        const p1 = sigmoid(z[0]!);
        out.push([1 - p1, p1]);
      } else {
        const max = Math.max(...z);
        const e = z.map((v) => Math.exp(v - max));
        const sum = e.reduce((a, b) => a + b, 0);
        out.push(e.map((v) => v / sum));
      }
    }
    return out;
  }
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** "balanced": n / (classes × count of the row's class), as in scikit-learn. */
function sampleWeights(y: Int32Array, classes: number, mode: "balanced" | "none"): Float64Array {
  const w = new Float64Array(y.length).fill(1);
  if (mode === "none") return w;
  const counts = new Float64Array(classes);
  for (const c of y) counts[c] = counts[c]! + 1;
  for (let i = 0; i < y.length; i++) w[i] = y.length / (classes * counts[y[i]!]!);
  return w;
}
