/** f(x) and its gradient written into `grad`. */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  maxIterations: number;
  /** Stop when the largest gradient component is at most this. */
  gradientTolerance: number;
  memory?: number;
  onIteration?: (iteration: number, loss: number) => void;
}

export interface LbfgsResult {
  x: Float64Array;
  loss: number;
  iterations: number;
  converged: boolean;
}

/**
 * Limited-memory BFGS with a backtracking (Armijo) line search. Meant for smooth strictly convex
 * objectives (L2-regularised logistic loss), where every accepted step has positive curvature.
 * All arithmetic runs in a fixed order, so results are bit-for-bit reproducible.
 */
export function minimizeLbfgs(f: Objective, x0: Float64Array, options: LbfgsOptions): LbfgsResult {
  const n = x0.length;
  const m = options.memory ?? 10;
  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  let loss = f(x, g);
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  const d = new Float64Array(n);
  const xNew = new Float64Array(n);
  const gNew = new Float64Array(n);

  for (let iter = 1; iter <= options.maxIterations; iter++) {
    if (maxAbs(g) <= options.gradientTolerance) return { x, loss, iterations: iter - 1, converged: true };

    // Two-loop recursion: d = -H g.
    for (let i = 0; i < n; i++) d[i] = -g[i]!;
    for (let k = s.length - 1; k >= 0; k--) {
      alpha[k] = rho[k]! * dot(s[k]!, d);
      axpy(-alpha[k]!, y[k]!, d);
    }
    if (s.length > 0) {
      const last = s.length - 1;
      scale(d, dot(s[last]!, y[last]!) / dot(y[last]!, y[last]!));
    } else {
      scale(d, 1 / Math.max(1, Math.sqrt(dot(g, g))));
    }
    for (let k = 0; k < s.length; k++) {
      const beta = rho[k]! * dot(y[k]!, d);
      axpy(alpha[k]! - beta, s[k]!, d);
    }

    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      s.length = 0;
      y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i]!;
      slope = dot(g, d);
    }

    let step = 1;
    let lossNew = Number.POSITIVE_INFINITY;
    for (let tries = 0; tries < 50; tries++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i]! + step * d[i]!;
      lossNew = f(xNew, gNew);
      if (lossNew <= loss + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(lossNew <= loss)) return { x, loss, iterations: iter, converged: false };

    const sk = new Float64Array(n);
    const yk = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      sk[i] = xNew[i]! - x[i]!;
      yk[i] = gNew[i]! - g[i]!;
    }
    const sy = dot(sk, yk);
    if (sy > 1e-12 * Math.sqrt(dot(sk, sk) * dot(yk, yk))) {
      if (s.length === m) {
        s.shift();
        y.shift();
        rho.shift();
      }
      s.push(sk);
      y.push(yk);
      rho.push(1 / sy);
    }
    const improvement = loss - lossNew;
    x.set(xNew);
    g.set(gNew);
    loss = lossNew;
    options.onIteration?.(iter, loss);
    if (improvement <= 1e-15 * Math.max(1, Math.abs(loss))) {
      return { x, loss, iterations: iter, converged: maxAbs(g) <= options.gradientTolerance * 100 };
    }
  }
  return { x, loss, iterations: options.maxIterations, converged: maxAbs(g) <= options.gradientTolerance };
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] = y[i]! + a * x[i]!;
}

function scale(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * a;
}

function maxAbs(x: Float64Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.abs(x[i]!);
    if (v > m) m = v;
  }
  return m;
}
