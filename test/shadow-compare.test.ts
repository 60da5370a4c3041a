import { describe, expect, it } from "vitest";
import {
  absDelta,
  compareShadow,
  flipMatrixMarkdown,
  parseAnswer,
  type ShadowAnswer,
  type ShadowPair,
  wilson,
} from "../src/shadow/compare.js";

const a = (label: string, p: number, other?: string): ShadowAnswer => ({
  label,
  probabilities: other ? { [label]: p, [other]: 1 - p } : { [label]: p },
});
const pair = (s: ShadowAnswer, c: ShadowAnswer | null, extra: Partial<ShadowPair> = {}): ShadowPair => ({
  stable: s,
  candidate: c,
  ...extra,
});
const times = (n: number, p: ShadowPair) => Array.from({ length: n }, () => p);

describe("wilson", () => {
  it("matches hand-computed intervals", () => {
    // p = .95, n = 100: centre (.95 + z²/200)/(1 + z²/100) = .93336, half-width .04510
    const i = wilson(95, 100);
    expect(i.low).toBeCloseTo(0.88825, 4);
    expect(i.high).toBeCloseTo(0.97846, 4);
    // 0 of 10: [0, z²/(n + z²)] = [0, .27754]
    const z = wilson(0, 10);
    expect(z.low).toBe(0);
    expect(z.high).toBeCloseTo(3.8414588 / 13.8414588, 5);
    // 10 of 10 mirrors it
    expect(wilson(10, 10).low).toBeCloseTo(1 - 3.8414588 / 13.8414588, 5);
    expect(() => wilson(0, 0)).toThrow();
  });
});

describe("absDelta", () => {
  it("takes the largest per-class difference, completing binary answers", () => {
    expect(absDelta(a("pos", 0.9, "neg"), a("pos", 0.8, "neg"))).toBeCloseTo(0.1, 10);
    // text route: only top confidence; with two labels the other class is 1 − p
    expect(absDelta(a("pos", 0.9), a("neg", 0.7), ["neg", "pos"])).toBeCloseTo(0.6, 10);
    // without the label set the two answers share no class
    expect(absDelta(a("pos", 0.9), a("neg", 0.7))).toBeNull();
    expect(
      absDelta(
        { label: "a", probabilities: { a: 0.5, b: 0.3, c: 0.2 } },
        { label: "b", probabilities: { a: 0.2, b: 0.6, c: 0.2 } },
      ),
    ).toBeCloseTo(0.3, 10);
  });
});

describe("compareShadow", () => {
  it("passes an equal candidate and reports the flip matrix", () => {
    const pairs = [
      ...times(60, pair(a("pos", 0.9, "neg"), a("pos", 0.9, "neg"), { candidateMs: 2, stableMs: 1 })),
      ...times(40, pair(a("neg", 0.8, "pos"), a("neg", 0.8, "pos"), { candidateMs: 4, stableMs: 1 })),
    ];
    const r = compareShadow(pairs);
    expect(r.verdict).toBe("pass");
    expect(r.pairs).toBe(100);
    expect(r.agreement).toBe(1);
    expect(r.agreementCi!.low).toBeCloseTo(1 - 3.8414588 / 103.8414588, 5);
    expect(r.flips).toEqual({ pos: { pos: 60 }, neg: { neg: 40 } });
    expect(r.meanAbsDelta).toBe(0);
    expect(r.candidateP50Ms).toBe(2);
    expect(r.candidateP95Ms).toBe(4);
    expect(r.summary).toMatch(/^shadow pass: agreement 100\.0% \(95% CI 96\.3%–100\.0%\) on 100 pairs/);
  });

  it("fails a label-swapped candidate, keeping a few truncated examples", () => {
    const pairs = times(100, pair(a("pos", 0.9), a("neg", 0.9), { input: "x".repeat(200) }));
    const r = compareShadow(pairs, { examples: 2, exampleChars: 10 }, ["neg", "pos"]);
    expect(r.verdict).toBe("fail");
    expect(r.agreement).toBe(0);
    expect(r.flips).toEqual({ pos: { neg: 100 } });
    expect(r.meanAbsDelta).toBeCloseTo(0.8, 10);
    expect(r.p95AbsDelta).toBeCloseTo(0.8, 10);
    expect(r.examples).toHaveLength(2);
    expect(r.examples[0]!.input).toBe(`${"x".repeat(9)}…`);
    expect(r.checks.find((c) => c.name === "disagreement")!.status).toBe("fail");
    expect(flipMatrixMarkdown(r.flips)).toBe(
      [
        "| stable ↓ / candidate → | neg | pos |",
        "|---|---:|---:|",
        "| **neg** | 0 | 0 |",
        "| **pos** | 100 | 0 |",
      ].join("\n"),
    );
  });

  it("judges disagreement and mean |Δp| against their thresholds", () => {
    // 97 agree, 3 flip: 3 % > 2 % default
    const base = [
      ...times(97, pair(a("pos", 0.9, "neg"), a("pos", 0.9, "neg"))),
      ...times(3, pair(a("pos", 0.55, "neg"), a("neg", 0.55, "pos"))),
    ];
    const r = compareShadow(base);
    expect(r.agreement).toBeCloseTo(0.97, 10);
    expect(r.verdict).toBe("fail");
    expect(compareShadow(base, { maxDisagreement: 0.03 }).verdict).toBe("pass");
    // mean |Δp| = 3 × 0.1 / 100 = 0.003
    expect(r.meanAbsDelta).toBeCloseTo(0.003, 10);
    // same labels, shifted probabilities: 0.2 everywhere > 0.05
    const shifted = compareShadow(times(100, pair(a("pos", 0.9, "neg"), a("pos", 0.7, "neg"))));
    expect(shifted.checks.map((c) => [c.name, c.status])).toEqual([
      ["errors", "pass"],
      ["disagreement", "pass"],
      ["meanAbsDelta", "fail"],
    ]);
    expect(shifted.verdict).toBe("fail");
  });

  it("is inconclusive with too few pairs unless the failure is already certain", () => {
    const few = compareShadow(times(50, pair(a("pos", 0.9, "neg"), a("pos", 0.9, "neg"))));
    expect(few.verdict).toBe("inconclusive");
    // 30 of 30 flipped: Wilson upper bound of agreement ≈ 11 % → disagreement certainly above 2 %
    const certain = compareShadow(times(30, pair(a("pos", 0.9, "neg"), a("neg", 0.9, "pos"))));
    expect(certain.verdict).toBe("fail");
    // 1 of 30 flipped: could still be under 2 %
    const unsure = compareShadow([
      ...times(29, pair(a("pos", 0.9, "neg"), a("pos", 0.9, "neg"))),
      pair(a("pos", 0.9, "neg"), a("neg", 0.9, "pos")),
    ]);
    expect(unsure.verdict).toBe("inconclusive");
    expect(compareShadow([]).verdict).toBe("inconclusive");
  });

  it("fails a candidate that answers with errors, even with no answered pair", () => {
    const errs = compareShadow(
      times(5, pair(a("pos", 0.9), null, { candidateError: "HTTP 500", candidateMs: 3 })),
    );
    // 5 errors > 1 % of the 100 attempts minPairs needs: certain
    expect(errs.verdict).toBe("fail");
    expect(errs.candidateErrors).toBe(5);
    expect(errs.pairs).toBe(0);
    expect(errs.agreement).toBeNull();
    expect(errs.summary).toBe("shadow fail: 5 mirrored, 5 candidate errors, no answered pairs");
    // one error in 100 attempts is exactly 1 %: not above the threshold
    const ok = compareShadow([
      ...times(100, pair(a("pos", 0.9, "neg"), a("pos", 0.9, "neg"))),
      pair(a("pos", 0.9), null),
    ]);
    expect(ok.checks[0]!.value).toBeCloseTo(1 / 101, 10);
    expect(ok.verdict).toBe("pass");
  });

  it("rejects bad thresholds", () => {
    expect(() => compareShadow([], { maxDisagreement: 2 })).toThrow();
    expect(() => compareShadow([], { minPairs: 0 })).toThrow();
  });
});

describe("parseAnswer", () => {
  it("reads the text and tabular /predict answers", () => {
    expect(parseAnswer({ text: "hi", sentiment: "positive", confidence: 91.5, model_version: "v1" })).toEqual(
      {
        label: "positive",
        probabilities: { positive: 0.915 },
      },
    );
    expect(
      parseAnswer({ label: 2, probability: 0.7, probabilities: { "0": 0.1, "1": 0.2, "2": 0.7 } }),
    ).toEqual({
      label: "2",
      probabilities: { "0": 0.1, "1": 0.2, "2": 0.7 },
    });
    expect(parseAnswer({ error: "boom" })).toBeNull();
    expect(parseAnswer("nope")).toBeNull();
  });
});
