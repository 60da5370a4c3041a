import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultGatePolicy, gatePolicySchema } from "../src/config/gate.js";
import { loadCsv } from "../src/data/dataset.js";
import { baselineFromArchive, baselineFromPath } from "../src/gate/baseline.js";
import { gateCandidate, verdictJson } from "../src/gate/gate.js";
import type { PairedComparison } from "../src/gate/paired.js";
import { renderMarkdown, renderText } from "../src/gate/render.js";
import type { Verdict, VerdictRow } from "../src/gate/verdict.js";
import { ClassifierSession } from "../src/onnx/session.js";
import { sha256File } from "../src/util/fs.js";
import { attr, GraphBuilder } from "../training/onnx/builder.js";
import { trainedBundle } from "./support/bundle.js";
import { repoRoot } from "./support/data.js";

const exec = promisify(execFile);
const byo = resolve(repoRoot, "../shared/fixtures/byo");

const row = (v: Verdict, rule: string): VerdictRow => {
  const found = v.rows.find((r) => r.rule === rule);
  if (!found) throw new Error(`no row ${rule}: ${v.rows.map((r) => r.rule).join(", ")}`);
  return found;
};
const paired = (v: Verdict): PairedComparison => {
  if (v.comparison?.mode !== "paired") throw new Error(`not paired: ${JSON.stringify(v.comparison)}`);
  return v.comparison;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mstest-gate-paired-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("paired gate on real trained bundles (airline data, onnxruntime-node)", () => {
  let base: string;
  let seed7: string;
  let weak: string;
  beforeAll(async () => {
    // The production model, a retrain with another seed (= another split of the same data), and a
    // much more strongly regularised one (C = 0.02 instead of 4).
    base = await trainedBundle();
    seed7 = await trainedBundle({ params: { seed: 7 } });
    weak = await trainedBundle({ params: { C: 0.02 } });
  }, 300_000);

  it("same data, different seed: paired on rows neither model trained on, interval contains 0, passes", async () => {
    const started = performance.now();
    const { verdict } = await gateCandidate(seed7, await baselineFromPath(base), defaultGatePolicy);
    const c = paired(verdict);
    const acc = row(verdict, "maxDrop.accuracy");
    console.log(
      `[gate] seed retrain: ${c.evaluation.rows} shared rows (${c.evaluation.excluded} left out), accuracy Δ ${acc.delta!.toFixed(4)} [${acc.interval![0].toFixed(4)}, ${acc.interval![1].toFixed(4)}], McNemar b=${c.accuracy.candidateOnly} c=${c.accuracy.baselineOnly} p=${acc.pValue!.toFixed(3)}; gate ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect(verdict.failing).toEqual([]);
    expect(verdict.passed).toBe(true);
    expect(acc.paired).toBe(true);
    expect(acc.interval![0]).toBeLessThanOrEqual(0);
    expect(acc.interval![1]).toBeGreaterThanOrEqual(0);
    expect(acc.significant).toBeNull();
    // The candidate's held-out split (seed 7), minus the rows the production model (seed 42) trained on.
    expect(c.evaluation.source).toContain("seed 7, test size 0.2");
    expect(c.evaluation.notes.join(" ")).toMatch(
      /\d+ rows whose input the production model was trained on are left out/,
    );
    expect(c.evaluation.excluded).toBeGreaterThan(1000);
    expect(c.evaluation.rows).toBeGreaterThan(300);
    for (const r of verdict.rows.filter((x) => x.kind === "regression")) {
      expect(r.paired).toBe(true);
      expect(r.interval![0]).toBeLessThanOrEqual(r.delta! + 1e-12);
      expect(r.interval![1]).toBeGreaterThanOrEqual(r.delta! - 1e-12);
    }
    expect(
      c.accuracy.candidateOnly + c.accuracy.baselineOnly + c.accuracy.bothRight + c.accuracy.bothWrong,
    ).toBe(c.evaluation.rows);
  });

  it("a much weaker model fails on a significant drop; the report lists disagreeing rows and flips", async () => {
    const { verdict } = await gateCandidate(weak, await baselineFromPath(base), defaultGatePolicy);
    const c = paired(verdict);
    const acc = row(verdict, "maxDrop.accuracy");
    console.log(
      `[gate] weak model: ${c.evaluation.rows} rows, accuracy ${acc.candidate!.toFixed(4)} vs ${acc.baseline!.toFixed(4)}, Δ ${acc.delta!.toFixed(4)} [${acc.interval![0].toFixed(4)}, ${acc.interval![1].toFixed(4)}], b=${c.accuracy.candidateOnly} c=${c.accuracy.baselineOnly} p=${acc.pValue!.toExponential(2)}`,
    );
    expect(verdict.passed).toBe(false);
    expect(acc.status).toBe("fail");
    expect(acc.significant).toBe("drop");
    expect(acc.pValue!).toBeLessThan(0.001);
    expect(acc.interval![1]).toBeLessThan(-0.005);
    expect(verdict.failing[0]).toMatch(
      /^maxDrop\.accuracy: accuracy 0\.\d{4} vs production 0\.9\d{3} on the same rows \(paired, \d+ rows\): Δ −0\.0\d{3}, interval \[−0\.\d{4}, −0\.\d{4}\], McNemar p = /,
    );
    // Same split as production (seed 42): only duplicate texts of training rows are left out.
    expect(c.evaluation.source).toContain("seed 42");
    expect(c.accuracy.baselineOnly).toBeGreaterThan(c.accuracy.candidateOnly);
    expect(c.flips.map((f) => f.label)).toEqual(["negative", "positive"]);
    expect(c.flips.reduce((a, f) => a + f.baselineOnly, 0)).toBe(c.accuracy.baselineOnly);
    expect(c.transitions.reduce((a, t) => a + t.count, 0)).toBe(c.accuracy.differentAnswers);
    expect(c.examples).toHaveLength(5);
    for (const x of c.examples) {
      expect(x.input.length).toBeLessThanOrEqual(80);
      expect(x.candidate.label).not.toBe(x.baseline.label);
      expect(x.line).toBeGreaterThan(1);
    }
    // Candidate's mistakes first.
    expect(c.examples[0]!.baseline.label).toBe(c.examples[0]!.truth);
    // The row the report points at really is that line of the CSV, with that label.
    const table = loadCsv(c.evaluation.path);
    const i = table.lines.indexOf(c.examples[0]!.line);
    expect(table.rows[i]!.airline_sentiment).toBe(c.examples[0]!.truth);
    expect(table.rows[i]!.text!.replace(/\s+/g, " ").startsWith(c.examples[0]!.input.replace(/…$/, ""))).toBe(
      true,
    );

    const md = renderMarkdown(verdict, { baselineNote: "b" });
    expect(md).toContain("**Paired:** both models scored on the same");
    expect(md).toMatch(/\*\*significant drop\*\*/);
    expect(md).toContain("### Where the models differ");
    expect(md).toContain("(only the candidate)");
    expect(md).toMatch(/\| negative \| \d+ \| \d+ \|/);
    expect(md).toContain("rows where they disagree");
    const text = renderText(verdict, { baselineNote: "b" });
    expect(text).toMatch(/Only the candidate right: \d+ rows · only production right: \d+ \(McNemar p = /);
    const json = JSON.parse(JSON.stringify(verdictJson({ verdict, baselineNote: "b" })));
    expect(json.comparison.mode).toBe("paired");
    expect(json.comparison.accuracy.pValue).toBe(acc.pValue);
    expect(json.rows[0].interval).toHaveLength(2);
  });

  it("the point rule fails the weak model too; the non-inferiority rule fails the seed retrain", async () => {
    const point = gatePolicySchema.parse({ compare: { rule: "point" } });
    const weakPoint = await gateCandidate(weak, await baselineFromPath(base), point);
    expect(row(weakPoint.verdict, "maxDrop.accuracy").status).toBe("fail");
    const strict = gatePolicySchema.parse({ compare: { rule: "noninferior" } });
    const seedStrict = await gateCandidate(seed7, await baselineFromPath(base), strict);
    const acc = row(seedStrict.verdict, "maxDrop.accuracy");
    // A few hundred shared rows cannot show the drop is below 0.005: non-inferiority is not shown.
    expect(acc.interval![0]).toBeLessThan(-0.005);
    expect(acc.status).toBe("fail");
  });

  it("baseline from another split is rescored on the candidate's rows, not compared across splits", async () => {
    const baselineCard = JSON.parse(await readFile(join(seed7, "model.json"), "utf8"));
    const { verdict } = await gateCandidate(base, await baselineFromPath(seed7), defaultGatePolicy);
    const c = paired(verdict);
    const acc = row(verdict, "maxDrop.accuracy");
    expect(c.evaluation.source).toContain("seed 42");
    expect(acc.paired).toBe(true);
    // Not the production card's own number (measured on its seed-7 split): rescored here.
    expect(acc.baseline).not.toBe(baselineCard.metrics.accuracy);
    expect(c.evaluation.rows + c.evaluation.excluded).toBe(2309);
    expect(verdict.passed).toBe(true);
  });

  it("bootstrap intervals are reproducible for a seed", async () => {
    const a = await gateCandidate(seed7, await baselineFromPath(base), defaultGatePolicy);
    const b = await gateCandidate(seed7, await baselineFromPath(base), defaultGatePolicy);
    expect(paired(b.verdict).metrics).toEqual(paired(a.verdict).metrics);
  });

  it("card-only baseline: says so and falls back to the unpaired comparison", async () => {
    const cardOnly = join(dir, "card-only");
    await mkdir(cardOnly, { recursive: true });
    await copyFile(join(base, "model.json"), join(cardOnly, "model.json"));
    const { verdict } = await gateCandidate(weak, await baselineFromPath(cardOnly), defaultGatePolicy);
    expect(verdict.comparison).toEqual({
      mode: "unpaired",
      reason: `only the production model's card is available (${cardOnly}), not its model.onnx`,
    });
    const acc = row(verdict, "maxDrop.accuracy");
    expect(acc.paired).toBe(false);
    expect(acc.interval).toBeUndefined();
    expect(acc.note).toBe("unpaired: each model's own test split");
    expect(renderMarkdown(verdict, { baselineNote: "b" })).toContain("⚠️ **Unpaired:** only the production");
    expect(renderText(verdict, { baselineNote: "b" })).toContain(
      "Unpaired: only the production model's card",
    );
  });

  it("release asset: the published bundle archive is unpacked and scored (paired)", async () => {
    const archive = join(dir, "bundle.tar.gz");
    await exec("tar", ["-czf", archive, "-C", base, "."]);
    const baseline = await baselineFromArchive(
      await readFile(archive),
      "release model-production (model-bundle.tar.gz)",
    );
    expect(baseline.subject?.bundleDir).toBeDefined();
    const { verdict } = await gateCandidate(seed7, baseline, defaultGatePolicy);
    expect(verdict.comparison?.mode).toBe("paired");
    await rm(baseline.subject!.bundleDir!, { recursive: true, force: true });
  });

  it("--eval-data: every labelled row of the named CSV, rows the models trained on left out", async () => {
    const evalCsv = join(byo, "airline-3class-test.csv");
    const { verdict } = await gateCandidate(seed7, await baselineFromPath(base), defaultGatePolicy, {
      evalData: evalCsv,
    });
    const c = paired(verdict);
    expect(c.evaluation.source).toBe(`--eval-data ${evalCsv}`);
    const table = loadCsv(evalCsv);
    const binary = table.rows.filter((r) => ["negative", "positive"].includes(r.airline_sentiment!.trim()));
    expect(c.evaluation.rows + c.evaluation.excluded).toBe(binary.length);
    expect(c.evaluation.notes.join(" ")).toMatch(/rows of .* skipped/);
    await expect(
      gateCandidate(seed7, await baselineFromPath(base), defaultGatePolicy, {
        evalData: join(dir, "nope.csv"),
      }),
    ).rejects.toThrow(/dataset not found/);
  });

  it("the swapped-label model reads labels differently: unpaired, and the card comparison still fails it", async () => {
    const swapped = await trainedBundle({ swapped: true });
    const { verdict } = await gateCandidate(swapped, await baselineFromPath(base), defaultGatePolicy);
    expect(verdict.comparison?.mode).toBe("unpaired");
    expect((verdict.comparison as { reason: string }).reason).toMatch(/read the labels differently/);
    expect(verdict.passed).toBe(false);
    expect(row(verdict, "maxDrop.classF1[negative]").status).toBe("fail");
  }, 120_000);
});

describe("paired gate, multiclass text: trained 3-class bundle vs a bring-your-own scikit-learn bundle", () => {
  it("scores both on the trained bundle's held-out split; warns that the BYO model's training rows are unknown", async () => {
    const trained = await trainedBundle({ classes: "three-class" });
    const byoDir = join(dir, "byo-3class");
    await mkdir(byoDir, { recursive: true });
    await copyFile(join(byo, "airline-3class-tfidf-lr.onnx"), join(byoDir, "model.onnx"));
    const evalCsv = join(byo, "airline-3class-test.csv");
    await writeFile(
      join(byoDir, "model.json"),
      JSON.stringify(
        await byoCard(join(byoDir, "model.onnx"), "airline-byo", evalCsv, "text-classification", {
          textColumn: "text",
          labelColumn: "airline_sentiment",
          labels: ["negative", "neutral", "positive"],
        }),
      ),
    );
    const { verdict } = await gateCandidate(trained, await baselineFromPath(byoDir), defaultGatePolicy);
    const c = paired(verdict);
    console.log(
      `[gate] 3-class trained vs BYO sklearn: ${c.evaluation.rows} rows, b=${c.accuracy.candidateOnly} c=${c.accuracy.baselineOnly} p=${c.accuracy.pValue.toExponential(2)}`,
    );
    expect(c.flips.map((f) => f.label)).toEqual(["negative", "neutral", "positive"]);
    expect(c.metrics.map((m) => m.key)).toEqual([
      "accuracy",
      "macroF1",
      "classF1[negative]",
      "classF1[neutral]",
      "classF1[positive]",
    ]);
    expect(verdict.rows.some((r) => r.rule === "maxDrop.rocAuc")).toBe(false);
    expect(c.evaluation.notes.join(" ")).toMatch(/production model: its model\.json has no training record/);
  }, 300_000);
});

describe("paired gate, tabular BYO bundles (wine): feature rows fed by each bundle's IO signature", () => {
  it("scikit-learn gradient boosting vs a nearest-centroid linear model on the same 54 rows", async () => {
    const evalCsv = join(byo, "wine-test.csv");
    const features = loadCsv(evalCsv).columns.filter((c) => c !== "cultivar");
    const labels = ["cultivar_a", "cultivar_b", "cultivar_c"];
    const gbm = join(dir, "wine-gbm");
    await mkdir(gbm, { recursive: true });
    await copyFile(join(byo, "wine-gbm.onnx"), join(gbm, "model.onnx"));
    await writeFile(
      join(gbm, "model.json"),
      JSON.stringify(
        await byoCard(join(gbm, "model.onnx"), "wine", evalCsv, "tabular-classification", {
          labelColumn: "cultivar",
          labels,
          featureColumns: features,
        }),
      ),
    );
    const centroid = join(dir, "wine-centroid");
    await mkdir(centroid, { recursive: true });
    await writeFile(join(centroid, "model.onnx"), centroidModel(join(byo, "wine.csv"), features, labels));
    await writeFile(
      join(centroid, "model.json"),
      JSON.stringify(
        await byoCard(join(centroid, "model.onnx"), "wine", evalCsv, "tabular-classification", {
          labelColumn: "cultivar",
          labels,
          featureColumns: features,
        }),
      ),
    );
    const policy = gatePolicySchema.parse({ goldenParity: false });
    const { verdict } = await gateCandidate(centroid, await baselineFromPath(gbm), policy);
    const c = paired(verdict);
    expect(c.evaluation.rows).toBe(54);
    expect(c.evaluation.source).toBe(`evaluation data ${evalCsv} (all labelled rows)`);
    expect(c.flips.map((f) => f.label)).toEqual(labels);
    const acc = row(verdict, "maxDrop.accuracy");
    console.log(
      `[gate] wine centroid vs gbm: accuracy ${acc.candidate!.toFixed(4)} vs ${acc.baseline!.toFixed(4)}, [${acc.interval![0].toFixed(4)}, ${acc.interval![1].toFixed(4)}], b=${c.accuracy.candidateOnly} c=${c.accuracy.baselineOnly}`,
    );
    expect(acc.baseline).toBeCloseTo(0.9815, 3); // what scikit-learn measured (models.json)
    if (c.examples.length > 0) expect(c.examples[0]!.input).toMatch(/^alcohol=[\d.]+, malic_acid=/);
    // Reversed roles: the same rows and the same counts, mirrored.
    const back = paired((await gateCandidate(gbm, await baselineFromPath(centroid), policy)).verdict);
    expect([back.accuracy.candidateOnly, back.accuracy.baselineOnly]).toEqual([
      c.accuracy.baselineOnly,
      c.accuracy.candidateOnly,
    ]);
  });
});

describe("paired gate, tabular bundles made by `modelship package` (the real CLI)", () => {
  it("packaged gradient boosting vs packaged nearest-centroid model: paired on the evaluation CSV", async () => {
    const evalCsv = join(byo, "wine-test.csv");
    const features = loadCsv(evalCsv).columns.filter((c) => c !== "cultivar");
    const labels = ["cultivar_a", "cultivar_b", "cultivar_c"];
    const centroidOnnx = join(dir, "centroid.onnx");
    await writeFile(centroidOnnx, centroidModel(join(byo, "wine.csv"), features, labels));
    const pack = async (model: string, out: string) => {
      const { stdout } = await exec(
        "node",
        [
          "bin/modelship.js",
          "package",
          "--model",
          model,
          "--data",
          evalCsv,
          "--label-column",
          "cultivar",
          "--out",
          join(dir, out),
          "--name",
          "wine",
          "--json",
        ],
        { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 },
      );
      return (JSON.parse(stdout) as { bundle: string }).bundle;
    };
    const gbm = await pack(join(byo, "wine-gbm.onnx"), "packaged-gbm");
    const centroid = await pack(centroidOnnx, "packaged-centroid");
    const { verdict } = await gateCandidate(centroid, await baselineFromPath(gbm), defaultGatePolicy);
    const c = paired(verdict);
    expect(c.evaluation.rows).toBe(54);
    expect(c.evaluation.source).toBe(`evaluation data ${evalCsv} (all labelled rows)`);
    expect(c.flips.map((f) => f.label)).toEqual(labels);
    expect(row(verdict, "goldenParity").status).toBe("pass");
    expect(row(verdict, "maxDrop.accuracy").baseline).toBeCloseTo(0.9815, 3);
    expect(c.evaluation.notes.join(" ")).toMatch(/production model: its model\.json has no training record/);
  }, 300_000);
});

/** A model.json as a BYO packager writes it: no training record, the evaluation CSV as dataset. */
async function byoCard(
  model: string,
  name: string,
  evalCsv: string,
  task: "text-classification" | "tabular-classification",
  o: { textColumn?: string; labelColumn: string; labels: string[]; featureColumns?: string[] },
) {
  const session = await ClassifierSession.open(model, { labels: o.labels });
  const modelSha = await sha256File(model);
  const card = {
    name,
    version: `20261128.120000-${modelSha.slice(0, 8)}`,
    model: { sha256: modelSha },
    io: {
      task,
      inputs: session.tensorSpecs("inputs"),
      outputs: session.tensorSpecs("outputs"),
      probabilitiesOutput: session.probabilitiesOutput,
      labels: o.labels,
      ...(o.featureColumns ? { featureColumns: o.featureColumns } : {}),
    },
    dataset: {
      path: evalCsv,
      sha256: await sha256File(evalCsv),
      ...(o.textColumn ? { textColumn: o.textColumn } : {}),
      labelColumn: o.labelColumn,
    },
    training: null,
    metrics: {},
  };
  await session.release();
  return card;
}

/**
 * Nearest class centroid on standardised features as an ONNX LinearClassifier (softmax of
 * −½‖(x − μ_c)/σ‖², expanded into weights and intercepts), fitted on wine.csv.
 */
function centroidModel(trainCsv: string, features: string[], labels: string[]): Uint8Array {
  const t = loadCsv(trainCsv);
  const x = t.rows.map((r) => features.map((f) => Number(r[f])));
  const y = t.rows.map((r) => labels.indexOf(r.cultivar!.trim()));
  const d = features.length;
  const mean = (rows: number[][]) =>
    Array.from({ length: d }, (_, j) => rows.reduce((a, r) => a + r[j]!, 0) / rows.length);
  const all = mean(x);
  const sd = Array.from({ length: d }, (_, j) =>
    Math.sqrt(x.reduce((a, r) => a + (r[j]! - all[j]!) ** 2, 0) / x.length),
  );
  const coefficients: number[] = [];
  const intercepts: number[] = [];
  labels.forEach((_, c) => {
    const mu = mean(x.filter((_, i) => y[i] === c));
    let b = 0;
    for (let j = 0; j < d; j++) {
      const v = sd[j]! ** 2;
      coefficients.push(mu[j]! / v);
      b -= mu[j]! ** 2 / (2 * v);
    }
    intercepts.push(b);
  });
  const g = new GraphBuilder("wine-centroid");
  g.input("input", { tensor: "float", shape: ["N", d] });
  const [label, probs] = g.node(
    "LinearClassifier",
    ["input"],
    ["label", "probabilities"],
    {
      classlabels_strings: labels,
      coefficients: attr.floats(coefficients),
      intercepts: attr.floats(intercepts),
      multi_class: 1,
      post_transform: "SOFTMAX",
    },
    { domain: "ai.onnx.ml" },
  );
  g.output(label!, { tensor: "string", shape: ["N"] });
  g.output(probs!, { tensor: "float", shape: ["N", labels.length] });
  return g.toModel({ opsets: { "": 17, "ai.onnx.ml": 3 } });
}

describe("paired gate, host ledger: the production bundle is copied out of the stable container", () => {
  it("status names the stable container: its /model is copied and scored (real engine)", async () => {
    const { testEngine, modelImage } = await import("./support/images.js");
    const { baselineFromStatus } = await import("../src/gate/baseline.js");
    const base = await trainedBundle();
    const candidate = await trainedBundle({ params: { seed: 7 } });
    const engine = await testEngine();
    const image = await modelImage(base);
    const name = `mstest-gate-copy-${process.pid}-${Date.now()}`;
    const id = (await engine.run("create", ["create", "--name", name, image.ref])).trim();
    let copied: string | undefined;
    try {
      const card = JSON.parse(await readFile(join(base, "model.json"), "utf8"));
      const baseline = await baselineFromStatus(
        { versions: [{ version: card.version, role: "stable", container: { id, name, hostPort: 1 } }] },
        "host ledger",
      );
      copied = baseline.subject?.bundleDir;
      expect(baseline.note).toBe(`Baseline: production ${card.version} (bundle copied from its container).`);
      expect(await sha256File(join(copied!, "model.onnx"))).toBe(card.model.sha256);
      const { verdict } = await gateCandidate(candidate, baseline, defaultGatePolicy);
      expect(verdict.comparison?.mode).toBe("paired");
    } finally {
      await engine.remove(name, { force: true });
      if (copied) await rm(copied, { recursive: true, force: true });
    }
  }, 600_000);
});
