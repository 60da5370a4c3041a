import { describe, expect, it } from "vitest";
import * as analysis from "../src/analysis/analysis.js";
import { labelTotalVariation, psi, sharesOf, totalVariation } from "../src/stats/distribution.js";

describe("distribution distances (one implementation for the analysis and drift)", () => {
  it("PSI: 0 for proportional counts, finite with empty bins, symmetric, shorter side padded with zeros", () => {
    expect(psi([10, 20, 30], [20, 40, 60])).toBeCloseTo(0, 3);
    const withEmpty = psi([0, 0, 100], [100, 0, 0]);
    expect(Number.isFinite(withEmpty)).toBe(true);
    expect(withEmpty).toBeGreaterThan(3);
    expect(psi([80, 10, 10], [10, 10, 80])).toBeCloseTo(psi([10, 10, 80], [80, 10, 10]), 12);
    expect(psi([5, 5], [5, 5, 0])).toBeCloseTo(psi([5, 5, 0], [5, 5, 0]), 12);
    expect(psi([], [1, 2])).toBe(0);
    // additive smoothing of 0.5 per bin: (q − p) ln(q/p) by hand for [1, 0] vs [0, 1]
    const q = [1.5 / 2, 0.5 / 2];
    const p = [0.5 / 2, 1.5 / 2];
    expect(psi([1, 0], [0, 1])).toBeCloseTo((q[0]! - p[0]!) * Math.log(q[0]! / p[0]!) * 2, 12);
  });

  it("total variation: half the L1 distance of shares, over arrays or label maps", () => {
    expect(totalVariation(sharesOf([8, 2]), [0.2, 0.8])).toBeCloseTo(0.6);
    expect(labelTotalVariation({ a: 0.8, b: 0.2 }, { a: 0.2, b: 0.8 })).toBeCloseTo(0.6);
    expect(labelTotalVariation({ a: 1 }, { b: 1 })).toBe(1);
    expect(sharesOf([0, 0])).toEqual([0, 0]);
  });

  it("the canary analysis uses these very functions (no second copy)", () => {
    expect(analysis.psi).toBe(psi);
    expect(analysis.totalVariation).toBe(labelTotalVariation);
  });
});
