import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../src/ledger/ledger.js";
import { type LoadReport, startLoad } from "../src/load/generator.js";
import { withClassLabels } from "../src/package/graph.js";
import type { DeployOutcome } from "../src/rollout/deploy.js";
import { deploySummaryMarkdown } from "../src/rollout/summary.js";
import { freePort } from "../src/rollout/wiring.js";
import { bundleAs, trainedBundle } from "./support/bundle.js";
import { byo } from "./support/byo.js";
import { byoBundle } from "./support/byo-bundles.js";
import { runCli } from "./support/cli.js";
import { repoRoot, tweetTexts } from "./support/data.js";
import { ensureDockerHost, modelImage, testEngine } from "./support/images.js";
import { killDaemonsOf } from "./support/leftovers.js";
import { loadFlowing } from "./support/load.js";

/**
 * `deploy --shadow` on real parts (issue 16): HAProxy mirrors live requests to the candidate container
 * while it sits at weight 0, the real CLI judges answer by answer, and only a pass lets weight move.
 * Runs under load from a separate process counting every user-visible failure. One host for every
 * case: text (label-swapped, equal, retrained with 200× stronger regularisation), then the edge is
 * switched to a tabular bring-your-own model (the shared wine fixture, packaged) for its equal and
 * label-swapped candidates.
 */
const PREFIX = "mstest-shd-";
let stateDir: string;
let edgeUrl: string;
type Image = { ref: string; version: string };
const images: Record<"v1" | "v2" | "flipped" | "weak" | "wine1" | "wine2" | "wineSwapped", Image> =
  {} as never;
/** The wine fixture's feature columns (models.json) and its full CSV: what tabular users send. */
let wineTraffic: { data: string; columns: string[] };

const cli = (args: string[], timeoutMs = 240_000) => runCli(args, { timeoutMs });
const common = () => ["--state-dir", stateDir, "--name-prefix", PREFIX];
// 2 shared cores: a fresh container's latency is noise here (test/analysis.test.ts covers latency).
const LOOSE_LATENCY = ["--latency-factor", "10", "--max-p95-ms", "2000", "--max-p99-ms", "4000"];
const deployArgs = (ref: string, extra: string[] = []) => [
  "deploy",
  "--image",
  ref,
  "--fast",
  "--steps",
  "50,100",
  ...LOOSE_LATENCY,
  ...common(),
  ...extra,
];

async function imageOf(dir: string, repository: string) {
  const card = JSON.parse(await readFile(join(dir, "model.json"), "utf8"));
  // The same stamps and repositories as test/acceptance.test.ts: one build serves both suites.
  const img = await modelImage(dir, { repository });
  return { ref: img.ref, version: card.version as string };
}

async function underLoad<T>(fn: () => Promise<T>, tabular = false): Promise<{ result: T; load: LoadReport }> {
  const what = tabular
    ? {
        texts: { data: wineTraffic.data, textColumn: wineTraffic.columns[0]! },
        features: { data: wineTraffic.data, columns: wineTraffic.columns },
      }
    : { texts: tweetTexts() };
  const load = await startLoad({ url: edgeUrl, rps: 150, connections: 16, ...what });
  try {
    await loadFlowing(load);
    const result = await fn();
    await new Promise((r) => setTimeout(r, 1000));
    return { result, load: await load.stop() };
  } catch (err) {
    await load.stop().catch(() => {});
    throw err;
  }
}

function expectNoUserErrors(load: LoadReport) {
  expect(load.completed).toBeGreaterThan(300);
  expect({ non2xx: load.non2xx, errors: load.errors, first: load.failures.slice(0, 5) }).toEqual({
    non2xx: 0,
    errors: {},
    first: [],
  });
}

const events = (stdout: string) =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });

beforeAll(async () => {
  ensureDockerHost();
  const good = await trainedBundle();
  const flipped = await trainedBundle({ swapped: true });
  images.v1 = await imageOf(await bundleAs(good, "20260101.000001", "shadow-rollout"), "mstest-acc-v1");
  images.v2 = await imageOf(await bundleAs(good, "20260101.000002", "shadow-rollout"), "mstest-acc-v2");
  images.flipped = await imageOf(flipped, "mstest-acc-flipped");
  // The same data and trainer, C 0.02 instead of 4 (the gate-paired suite's "weak" model, one cache).
  images.weak = await imageOf(await trainedBundle({ params: { C: 0.02 } }), "mstest-shd-weak");
  // Tabular: the shared wine GBM packaged (`modelship package`), as two releases and label-swapped.
  const wine = await byoBundle("wine-gbm");
  const wineCard = JSON.parse(await readFile(join(wine, "model.json"), "utf8"));
  const [a, b, c] = wineCard.io.labels as string[];
  const swappedDir = join(repoRoot, "test", ".cache", "shadow-rollout");
  await mkdir(swappedDir, { recursive: true });
  const swappedOnnx = join(swappedDir, "wine-swapped.onnx");
  await writeFile(swappedOnnx, withClassLabels(await readFile(byo("wine-gbm.onnx")), [b!, a!, c!]));
  const wineSwapped = await byoBundle("wine-gbm", { name: "wine-swapped", model: swappedOnnx });
  images.wine1 = await imageOf(await bundleAs(wine, "20260101.000011", "shadow-rollout"), "mstest-shd-wine1");
  images.wine2 = await imageOf(await bundleAs(wine, "20260101.000012", "shadow-rollout"), "mstest-shd-wine2");
  images.wineSwapped = await imageOf(
    await bundleAs(wineSwapped, "20260101.000013", "shadow-rollout"),
    "mstest-shd-wine-swapped",
  );
  const meta = JSON.parse(await readFile(byo("models.json"), "utf8"));
  wineTraffic = { data: byo(meta.models["wine-gbm"].data), columns: meta.models["wine-gbm"].features };
  stateDir = await mkdtemp(join(tmpdir(), "mstest-shd-state-"));
  const [edge, metrics] = [await freePort(), await freePort()];
  const init = await cli([
    "host",
    "init",
    "--state-dir",
    stateDir,
    "--edge-port",
    String(edge),
    "--metrics-port",
    String(metrics),
  ]);
  expect(init.code, init.stderr).toBe(0);
  edgeUrl = `http://127.0.0.1:${edge}`;
  const first = await cli(deployArgs(images.v1.ref, ["--steps", "100"]));
  expect(first.code, first.stdout + first.stderr).toBe(0);
}, 900_000);

afterAll(async () => {
  if (!stateDir) return;
  const engine = await testEngine();
  for (const c of await engine.listContainers({ labels: { "dev.modelship.state-dir": stateDir } }))
    await engine.remove(c.id, { force: true }).catch(() => {});
  await killDaemonsOf(stateDir);
  await rm(stateDir, { recursive: true, force: true });
});

describe("deploy --shadow (real HAProxy mirror, real containers, real CLI)", () => {
  it("a label-swapped candidate fails shadow and is aborted before any weight moves; users see 0 failures", async () => {
    const { result, load } = await underLoad(() =>
      cli(deployArgs(images.flipped.ref, ["--shadow", "4s", "--json"])),
    );
    expect(result.code, result.stdout + result.stderr).not.toBe(0);
    const ev = events(result.stdout);
    // No weight was ever given to the candidate: no weight event, no canary analysis.
    expect(ev.filter((e) => e.type === "weight")).toEqual([]);
    const shadow = ev.find((e) => e.type === "shadow") as unknown as {
      verdict: string;
      pairs: number;
      agreement: number;
    };
    expect(shadow.verdict).toBe("fail");
    expect(shadow.agreement).toBeLessThan(0.5);
    const res = ev.find((e) => e.type === "result") as unknown as {
      status: string;
      reason: string;
      shadow: { verdict: string; flips: Record<string, Record<string, number>> };
    };
    expect(res.status).toBe("aborted");
    expect(res.reason).toMatch(/^shadow step failed: /);
    expect(res.shadow.verdict).toBe("fail");
    expect(res.shadow.flips.positive?.negative ?? 0).toBeGreaterThan(0);
    // The canary-deploy job summary of this very outcome: verdict, figures, the flip matrix.
    const md = deploySummaryMarkdown(res as unknown as DeployOutcome);
    expect(md).toContain("### Shadow step: ❌ fail");
    expect(md).toMatch(/\| stable ↓ \/ candidate → \| negative \| positive \|/);
    expect(md).toMatch(/\| \*\*positive\*\* \| [1-9]\d* \| \d+ \|/);
    expectNoUserErrors(load);
    const l = await new Ledger(stateDir).read();
    const cand = l.versions.find((v) => v.version === images.flipped.version)!;
    expect(cand).toMatchObject({ role: "failed", weight: 0, analysis: [] });
    expect(l.versions.find((v) => v.version === images.v1.version)).toMatchObject({
      role: "stable",
      weight: 100,
    });
    // Candidate container removed; the mirror taken down again.
    const engine = await testEngine();
    const left = await engine.listContainers({ labels: { "dev.modelship.state-dir": stateDir } });
    expect(left.map((c) => c.name).filter((n) => n.includes(images.flipped.version))).toEqual([]);
    console.log(`shadow flipped: ${res.reason}; users ${load.completed} requests, 0 failed`);
  }, 300_000);

  it("an equal candidate passes shadow (progress line with its agreement) and is promoted", async () => {
    const { result, load } = await underLoad(() => cli(deployArgs(images.v2.ref, ["--shadow", "4s"])));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const line = result.stdout.split("\n").find((l) => l.startsWith("Shadow 4s... "));
    expect(line, result.stdout).toMatch(
      /^Shadow 4s\.\.\. ✓ \(\d+ pairs, agreement (99(\.\d)?|100)% \[[\d.]+–[\d.]+\], mean \|Δp\| 0\.00\d/,
    );
    const order = [
      "Shadow 4s... ✓",
      "Starting canary deployment (50% traffic)... ✓",
      "Expanding to 100%... ✓",
    ];
    const at = order.map((p) => result.stdout.indexOf(p));
    expect(
      at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!)),
      result.stdout,
    ).toBe(true);
    expectNoUserErrors(load);
    const l = await new Ledger(stateDir).read();
    expect(l.versions.find((v) => v.version === images.v2.version)).toMatchObject({ role: "stable" });
    console.log(`shadow equal: ${line}`);
  }, 300_000);

  it("a candidate retrained with very different regularisation (C 0.02 vs 4) fails shadow; users see 0 failures", async () => {
    const { result, load } = await underLoad(() =>
      cli(deployArgs(images.weak.ref, ["--shadow", "4s", "--json"])),
    );
    expect(result.code, result.stdout + result.stderr).not.toBe(0);
    const ev = events(result.stdout);
    expect(ev.filter((e) => e.type === "weight")).toEqual([]);
    const res = ev.find((e) => e.type === "result") as unknown as {
      status: string;
      reason: string;
      shadow: { verdict: string; pairs: number; meanAbsDelta: number; agreement: number };
    };
    expect(res.status).toBe("aborted");
    expect(res.reason).toMatch(/^shadow step failed: /);
    expect(res.shadow.verdict).toBe("fail");
    expect(res.shadow.pairs).toBeGreaterThanOrEqual(50);
    // Same labels mostly, very different confidence: the answer-by-answer |Δp| is what fails it.
    expect(res.shadow.meanAbsDelta).toBeGreaterThan(0.05);
    expectNoUserErrors(load);
    const l = await new Ledger(stateDir).read();
    expect(l.versions.find((v) => v.version === images.weak.version)).toMatchObject({
      role: "failed",
      weight: 0,
      analysis: [],
    });
    console.log(`shadow weak: ${res.reason}; users ${load.completed} requests, 0 failed`);
  }, 300_000);

  describe("tabular (BYO wine, packaged with modelship package)", () => {
    it("the edge switches to the wine model (no load, steps 100)", async () => {
      const r = await cli(deployArgs(images.wine1.ref, ["--steps", "100"]));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const l = await new Ledger(stateDir).read();
      expect(l.versions.find((v) => v.version === images.wine1.version)).toMatchObject({ role: "stable" });
    }, 300_000);

    it("the label-swapped wine fails shadow; users see 0 failures", async () => {
      const { result, load } = await underLoad(
        () => cli(deployArgs(images.wineSwapped.ref, ["--steps", "shadow,100", "--json"])),
        true,
      );
      expect(result.code, result.stdout + result.stderr).not.toBe(0);
      const ev = events(result.stdout);
      expect(ev.filter((e) => e.type === "weight")).toEqual([]);
      const res = ev.find((e) => e.type === "result") as unknown as {
        status: string;
        reason: string;
        shadow: { verdict: string; agreement: number; examples: Array<{ input: string }> };
      };
      expect(res.status).toBe("aborted");
      expect(res.reason).toMatch(/^shadow step failed: /);
      expect(res.shadow.verdict).toBe("fail");
      expect(res.shadow.agreement).toBeLessThan(0.9);
      // A disagreeing request shown with its features.
      expect(res.shadow.examples[0]?.input).toMatch(/alcohol/);
      expectNoUserErrors(load);
      console.log(`shadow wine swapped: ${res.reason}; users ${load.completed} requests, 0 failed`);
    }, 300_000);

    it("an equal wine candidate passes `--steps shadow,100` (the --fast shadow duration) with ≥ 99 % agreement", async () => {
      const { result, load } = await underLoad(
        () => cli(deployArgs(images.wine2.ref, ["--steps", "shadow,100", "--json"])),
        true,
      );
      expect(result.code, result.stdout + result.stderr).toBe(0);
      const shadow = events(result.stdout).find((e) => e.type === "shadow") as unknown as {
        verdict: string;
        pairs: number;
        agreement: number;
        durationMs: number;
      };
      expect(shadow.verdict).toBe("pass");
      expect(shadow.pairs).toBeGreaterThanOrEqual(50);
      expect(shadow.agreement).toBeGreaterThanOrEqual(0.99);
      expect(shadow.durationMs % 3000).toBe(0);
      expectNoUserErrors(load);
      const l = await new Ledger(stateDir).read();
      expect(l.versions.find((v) => v.version === images.wine2.version)).toMatchObject({ role: "stable" });
      console.log(`shadow wine equal: ${shadow.pairs} pairs, agreement ${shadow.agreement}`);
    }, 300_000);
  });
});
