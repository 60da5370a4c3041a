import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultGatePolicy, type GatePolicyInput, gatePolicySchema } from "../src/config/gate.js";
import { loadGatePolicy } from "../src/config/load.js";
import { baselineFromPath, baselineFromStatus } from "../src/gate/baseline.js";
import { type GateCard, parseCard } from "../src/gate/card.js";
import type { Comparison } from "../src/gate/paired.js";
import { GATE_COMMENT_MARKER, renderMarkdown, renderText } from "../src/gate/render.js";
import { mcnemarExact } from "../src/gate/stats.js";
import { evaluateGate, type GoldenResult } from "../src/gate/verdict.js";

/** A card shaped like a trainer's model.json, reduced to what the gate reads. */
function card(overrides: {
  version?: string;
  accuracy?: number;
  macroF1?: number;
  rocAuc?: number;
  f1?: Record<string, number>;
  p95?: number;
  drop?: string[];
}): GateCard {
  const f1 = overrides.f1 ?? { negative: 0.95, positive: 0.8 };
  const metrics: Record<string, unknown> = {
    accuracy: overrides.accuracy ?? 0.92,
    macroF1: overrides.macroF1 ?? 0.875,
    rocAuc: overrides.rocAuc ?? 0.96,
    classes: Object.fromEntries(
      Object.entries(f1).map(([k, v]) => [k, { precision: v, recall: v, f1: v, support: 100 }]),
    ),
    confusionMatrix: {
      labels: ["negative", "positive"],
      matrix: [
        [1800, 36],
        [150, 323],
      ],
    },
  };
  for (const key of overrides.drop ?? []) delete metrics[key];
  return parseCard(
    JSON.stringify({
      name: "sentiment",
      version: overrides.version ?? "20261122.031500-ab12cd34",
      io: { labels: ["negative", "positive"] },
      metrics,
      runtime: {
        onnxruntimeVersion: "1.30.0",
        fileSizeBytes: 4_200_000,
        loadMs: 120,
        singleRowP50Ms: 0.4,
        singleRowP95Ms: overrides.p95 ?? 0.9,
        batch64RowsPerSec: 30000,
      },
    }),
    "test card",
  );
}

const goldenOk: GoldenResult = { status: "checked", examples: 24, mismatches: 0, maxAbsDiff: 3e-7 };
const policy = (input: GatePolicyInput = {}) => gatePolicySchema.parse(input);
const subject = (c: GateCard) => ({ card: c, source: "test" });

describe("gate verdict", () => {
  it("first deploy: states there is no baseline and applies only absolute rules", () => {
    const v = evaluateGate(subject(card({})), null, policy({ minimum: { accuracy: 0.9 } }), goldenOk);
    expect(v.passed).toBe(true);
    expect(v.baseline).toBeNull();
    expect(v.rows.map((r) => r.kind)).not.toContain("regression");
    expect(v.rows.filter((r) => r.kind !== "info").map((r) => r.rule)).toEqual([
      "minimum.accuracy",
      "runtime.maxP95Ms",
      "runtime.maxSizeMb",
      "runtime.maxLoadMs",
      "goldenParity",
    ]);
    const md = renderMarkdown(v, {
      baselineNote: "No production baseline (nothing published): first deploy — only absolute rules apply.",
    });
    // Metrics without a rule are still reported, never judged.
    expect(v.rows.filter((r) => r.kind === "info").map((r) => r.metric)).toEqual([
      "macro-F1",
      "ROC AUC",
      "F1 (negative)",
      "F1 (positive)",
    ]);
    expect(md.startsWith(GATE_COMMENT_MARKER)).toBe(true);
    expect(md).toContain("| · | macro-F1 | 0.8750 | — | — | no rule |");
    expect(md).toContain("first deploy");
    expect(md).toContain("Candidate (first deploy)");
  });

  it("passes a candidate within every floor and regression limit, with deltas against the baseline", () => {
    const base = card({
      version: "20261121.120000-00000000",
      accuracy: 0.921,
      f1: { negative: 0.951, positive: 0.805 },
    });
    const cand = card({ accuracy: 0.918, f1: { negative: 0.95, positive: 0.796 } });
    const v = evaluateGate(
      subject(cand),
      subject(base),
      policy({ minimum: { accuracy: 0.915, classF1: { positive: 0.79 } } }),
      goldenOk,
    );
    expect(v.failing).toEqual([]);
    expect(v.passed).toBe(true);
    const acc = v.rows.find((r) => r.rule === "maxDrop.accuracy")!;
    expect(acc.delta).toBeCloseTo(-0.003, 10);
    expect(acc.status).toBe("pass");
    expect(v.rows.find((r) => r.rule === "maxDrop.classF1[positive]")!.delta).toBeCloseTo(-0.009, 10);
    expect(v.rows.some((r) => r.rule === "minimum.classF1[negative]")).toBe(false);
  });

  it("absolute fail: a floor below the minimum fails and is named", () => {
    const v = evaluateGate(
      subject(card({ accuracy: 0.9, f1: { negative: 0.94, positive: 0.7 } })),
      null,
      policy({ minimum: { accuracy: 0.915, classF1: 0.79 } }),
      goldenOk,
    );
    expect(v.passed).toBe(false);
    expect(v.failing).toEqual([
      "minimum.accuracy: accuracy 0.9000 (required ≥ 0.9150)",
      "minimum.classF1[positive]: F1 (positive) 0.7000 (required ≥ 0.7900)",
    ]);
    expect(renderText(v, { baselineNote: "none" })).toContain("✗ minimum.accuracy");
  });

  it("regression fail: a drop beyond the allowed one fails even above every floor", () => {
    const base = card({ accuracy: 0.93, f1: { negative: 0.96, positive: 0.83 } });
    const cand = card({ accuracy: 0.924, f1: { negative: 0.955, positive: 0.815 } });
    const v = evaluateGate(subject(cand), subject(base), defaultGatePolicy, goldenOk);
    expect(v.passed).toBe(false);
    expect(v.failing.map((f) => f.split(":")[0])).toEqual(["maxDrop.accuracy", "maxDrop.classF1[positive]"]);
    expect(v.failing[0]).toContain("dropped 0.0060 (allowed drop ≤ 0.0050)");
    const md = renderMarkdown(v, { baselineNote: "Baseline: production" });
    expect(md).toContain("| ❌ | accuracy | 0.9240 | 0.9300 | −0.0060 |");
    expect(md).toContain("line [");
  });

  it("exactly the allowed drop passes (no float noise)", () => {
    const v = evaluateGate(
      subject(card({ accuracy: 0.915 })),
      subject(card({ accuracy: 0.92 })),
      defaultGatePolicy,
      goldenOk,
    );
    expect(v.rows.find((r) => r.rule === "maxDrop.accuracy")!.status).toBe("pass");
  });

  it("missing metric: a failing row, not a crash", () => {
    const cand = card({ drop: ["rocAuc", "accuracy"], f1: { negative: 0.95 } });
    const base = card({});
    const v = evaluateGate(subject(cand), subject(base), policy({ minimum: { rocAuc: 0.9 } }), goldenOk);
    expect(v.passed).toBe(false);
    const missing = v.rows.filter((r) => r.candidate === null).map((r) => r.rule);
    expect(missing).toEqual([
      "minimum.rocAuc",
      "maxDrop.accuracy",
      "maxDrop.rocAuc",
      "maxDrop.classF1[positive]",
    ]);
    expect(v.failing).toContain(
      "maxDrop.classF1[positive]: candidate model.json has no metrics.classes.positive.f1",
    );
    expect(renderMarkdown(v, { baselineNote: "b" })).toContain("**missing**");
  });

  it("missing accuracy on a first deploy with no floors still fails (the contract requires it)", () => {
    const v = evaluateGate(subject(card({ drop: ["accuracy"] })), null, defaultGatePolicy, goldenOk);
    expect(v.failing).toEqual(["metrics.accuracy: candidate model.json has no metrics.accuracy"]);
  });

  it("runtime limits and golden parity are enforced", () => {
    const bad: GoldenResult = {
      status: "checked",
      examples: 24,
      mismatches: 2,
      maxAbsDiff: 0.03,
      firstMismatch: "example 3 differs by 3.00e-2",
    };
    const v = evaluateGate(subject(card({ p95: 150 })), null, defaultGatePolicy, bad);
    expect(v.failing.map((f) => f.split(":")[0])).toEqual(["runtime.maxP95Ms", "goldenParity"]);
    const unavailable = evaluateGate(subject(card({})), null, defaultGatePolicy, {
      status: "unavailable",
      reason: "no model.onnx next to the candidate's model.json",
    });
    expect(unavailable.failing).toEqual(["goldenParity: no model.onnx next to the candidate's model.json"]);
    const off = evaluateGate(subject(card({})), null, policy({ goldenParity: false }), undefined);
    expect(off.passed).toBe(true);
  });
});

describe("gate policy and baseline files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mstest-gate-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a standalone policy file and the gate section of modelship.yaml", async () => {
    await writeFile(
      join(dir, "policy.yaml"),
      "minimum:\n  accuracy: 0.915\n  classF1: {positive: 0.79}\nmaxDrop:\n  accuracy: 0.01\n",
    );
    const p = await loadGatePolicy(join(dir, "policy.yaml"));
    expect(p.minimum.accuracy).toBe(0.915);
    expect(p.maxDrop).toEqual({ accuracy: 0.01, macroF1: 0.01, rocAuc: 0.01, classF1: 0.01 });
    await writeFile(join(dir, "modelship.yaml"), "data: {path: x.csv}\ngate:\n  runtime: {maxP95Ms: 5}\n");
    expect((await loadGatePolicy(join(dir, "modelship.yaml"))).runtime.maxP95Ms).toBe(5);
  });

  it("names the bad key and what was expected", async () => {
    await writeFile(join(dir, "bad.yaml"), "gate:\n  minimum:\n    accuracy: 1.5\n");
    await expect(loadGatePolicy(join(dir, "bad.yaml"))).rejects.toThrow(/gate\.minimum\.accuracy: .*(<=|1)/);
    await writeFile(join(dir, "typo.yaml"), "gate:\n  maxDrops: {}\n");
    await expect(loadGatePolicy(join(dir, "typo.yaml"))).rejects.toThrow(/maxDrops/);
    await expect(loadGatePolicy(join(dir, "nope.yaml"))).rejects.toThrow(/no such file/);
  });

  it("finds the stable version in a status document and reads its model.json", async () => {
    await writeFile(join(dir, "prod.json"), JSON.stringify(card({ version: "20261120.000000-11111111" })));
    const status = {
      edge: { url: "http://127.0.0.1:1" },
      versions: [
        { version: "20261119.000000-00000000", role: "standby", weight: 0, image: "m:old" },
        {
          version: "20261120.000000-11111111",
          role: "stable",
          weight: 100,
          image: "m:new",
          modelJson: join(dir, "prod.json"),
        },
      ],
    };
    const b = await baselineFromStatus(status, "host ledger");
    expect(b.subject?.card.version).toBe("20261120.000000-11111111");
    await writeFile(join(dir, "status.json"), JSON.stringify({ ...status, versions: [] }));
    const none = await baselineFromPath(join(dir, "status.json"));
    expect(none.subject).toBeNull();
    expect(none.note).toMatch(/first deploy/);
  });
});

describe("paired rules: significance, point and non-inferiority on the same rows", () => {
  /** A paired comparison with one accuracy difference, its interval and McNemar counts. */
  function comparison(d: { delta: number; low: number; high: number; b: number; c: number }): Comparison {
    return {
      mode: "paired",
      evaluation: { source: "test rows", path: "t.csv", rows: 1000, excluded: 0, notes: [] },
      bootstrap: { resamples: 2000, seed: 17, confidence: 0.95 },
      metrics: [{ key: "accuracy", candidate: 0.9 + d.delta, baseline: 0.9, ...d, resamples: 2000 }],
      accuracy: {
        candidateOnly: d.b,
        baselineOnly: d.c,
        bothRight: 880,
        bothWrong: 120 - d.b - d.c,
        differentAnswers: d.b + d.c,
        pValue: mcnemarExact(d.b, d.c),
      },
      flips: [],
      transitions: [],
      examples: [],
      ms: 1,
    };
  }
  const judge = (rule: "significant" | "point" | "noninferior", d: Parameters<typeof comparison>[0]) =>
    evaluateGate(
      subject(card({})),
      subject(card({ version: "20261121.120000-00000000" })),
      policy({ compare: { rule } }),
      goldenOk,
      comparison(d),
    ).rows.find((r) => r.rule === "maxDrop.accuracy")!;

  // 0.012 drop, 12 vs 24 disagreements: p = 0.065 (not significant at 95 %).
  const noisy = { delta: -0.012, low: -0.025, high: 0.001, b: 12, c: 24 };
  // 0.004 drop, 40 vs 60: p = 0.057 → not significant; below maxDrop anyway.
  const small = { delta: -0.004, low: -0.0085, high: 0.0005, b: 40, c: 60 };
  // 0.03 drop, 10 vs 40: p ≈ 2.4e-5 → significant drop larger than 0.005.
  const clear = { delta: -0.03, low: -0.045, high: -0.016, b: 10, c: 40 };

  it("significant (default): a large but noisy drop passes, a significant large drop fails", () => {
    const n = judge("significant", noisy);
    expect([n.status, n.significant, n.paired]).toEqual(["pass", null, true]);
    expect(n.pValue).toBeCloseTo(mcnemarExact(12, 24), 12);
    expect(n.pValue!).toBeGreaterThan(0.05);
    const c = judge("significant", clear);
    expect([c.status, c.significant]).toEqual(["fail", "drop"]);
    expect(c.interval).toEqual([-0.045, -0.016]);
    expect(c.limit).toBe("no significant drop > 0.0050");
  });

  it("point: the point drop alone decides; noninferior: the interval's lower end must stay above −maxDrop", () => {
    expect(judge("point", noisy).status).toBe("fail");
    expect(judge("point", small).status).toBe("pass");
    expect(judge("noninferior", small).status).toBe("fail"); // −0.0085 < −0.005
    expect(judge("noninferior", { ...small, low: -0.004 }).status).toBe("pass");
  });

  it("a significant gain is labelled a gain and never fails", () => {
    const g = judge("significant", { delta: 0.03, low: 0.016, high: 0.045, b: 40, c: 10 });
    expect([g.status, g.significant]).toEqual(["pass", "gain"]);
  });

  it("the report marks paired rows with their interval and unpaired comparisons with the reason", () => {
    const v = evaluateGate(
      subject(card({})),
      subject(card({ version: "20261121.120000-00000000" })),
      defaultGatePolicy,
      goldenOk,
      comparison(clear),
    );
    const md = renderMarkdown(v, { baselineNote: "b" });
    expect(md).toContain("−0.0300<br><sub>[−0.0450, −0.0160] · p 2.4e-5 · **significant drop**</sub>");
    expect(md).toContain("McNemar's exact test on the 50 rows exactly one model got right: p = 2.4e-5.");
    const u = evaluateGate(
      subject(card({})),
      subject(card({ version: "20261121.120000-00000000" })),
      defaultGatePolicy,
      goldenOk,
      { mode: "unpaired", reason: "only a card" },
    );
    expect(u.rows.find((r) => r.rule === "maxDrop.accuracy")).toMatchObject({ paired: false });
    expect(renderMarkdown(u, { baselineNote: "b" })).toContain("⚠️ **Unpaired:** only a card.");
    expect(renderText(u, { baselineNote: "b" })).toContain(
      "Unpaired: only a card; Δ compares each model's own test split.",
    );
  });
});
