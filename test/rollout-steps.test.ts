import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadDeployConfig } from "../src/config/load.js";
import { type DeployFileSettings, parseSteps, settingsFromFlags } from "../src/rollout/options.js";
import { FAST_SHADOW_STEP_MS, SHADOW_STEP_MS } from "../src/shadow/compare.js";
import { ExitCode, UserError } from "../src/util/errors.js";

/** Steps with a leading shadow step: `--steps shadow,5,25,50,100`, modelship.yaml `deploy:`, `--shadow`. */

const file = (deploy: DeployFileSettings["deploy"]): DeployFileSettings => ({
  deploy,
  file: "modelship.yaml",
});

/** The one-line usage error (exit 2) a call throws. */
function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.usage);
    const message = (err as Error).message;
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error("expected a usage error");
}

describe("parseSteps", () => {
  it("reads a leading shadow step and the percentages, from text or a YAML list", () => {
    expect(parseSteps("shadow,5,25,50,100", "--steps")).toEqual({ shadow: true, steps: [5, 25, 50, 100] });
    expect(parseSteps(" Shadow , 10%, 100 ", "--steps")).toEqual({ shadow: true, steps: [10, 100] });
    expect(parseSteps("5,25,50,100", "--steps")).toEqual({ shadow: false, steps: [5, 25, 50, 100] });
    expect(parseSteps(["shadow", 5, 100], "deploy.steps")).toEqual({ shadow: true, steps: [5, 100] });
  });

  it("refuses shadow anywhere but first, twice, alone, and tokens that are neither", () => {
    expect(usageError(() => parseSteps("5,shadow,100", "--steps"))).toBe(
      "--steps: 'shadow' must be the first step, before any traffic moves (got '5,shadow,100'; e.g. shadow,5,25,50,100)",
    );
    expect(usageError(() => parseSteps("shadow,shadow,100", "--steps"))).toMatch(/'shadow' is given twice/);
    expect(usageError(() => parseSteps("shadow", "--steps"))).toBe(
      "--steps: 'shadow' has no canary percentages after shadow (e.g. shadow,5,25,50,100)",
    );
    expect(usageError(() => parseSteps("shadow,5,,100", "--steps"))).toMatch(
      /'' is neither a whole percentage nor 'shadow'/,
    );
    expect(usageError(() => parseSteps("mirror,5,100", "deploy.steps"))).toMatch(
      /^deploy\.steps: 'mirror' is neither/,
    );
    expect(usageError(() => parseSteps("5.5,100", "--steps"))).toMatch(/'5.5' is neither/);
  });
});

describe("settingsFromFlags: the shadow step", () => {
  it("is off by default and with plain percentages", () => {
    expect(settingsFromFlags({}).shadowMs).toBe(0);
    expect(settingsFromFlags({ steps: "5,25,100" }).shadowMs).toBe(0);
  });

  it("a leading shadow token runs one of the default duration (short with --fast)", () => {
    const s = settingsFromFlags({ steps: "shadow,5,25,50,100" });
    expect(s.shadowMs).toBe(SHADOW_STEP_MS);
    expect(s.steps).toEqual([5, 25, 50, 100]);
    expect(settingsFromFlags({ steps: "shadow,10,100", fast: true }).shadowMs).toBe(FAST_SHADOW_STEP_MS);
  });

  it("--shadow <duration> keeps working alone and sets the token's duration", () => {
    expect(settingsFromFlags({ shadow: "30s" }).shadowMs).toBe(30_000);
    expect(settingsFromFlags({ shadow: "30s", steps: "shadow,5,100" }).shadowMs).toBe(30_000);
    expect(settingsFromFlags({ shadow: "0", steps: "5,100" }).shadowMs).toBe(0);
  });

  it("refuses contradictions and bad percentages in one line, exit 2", () => {
    expect(usageError(() => settingsFromFlags({ steps: "shadow,5,100", shadow: "0" }))).toBe(
      "--steps start with shadow but --shadow 0 turns the shadow step off: drop one of them",
    );
    expect(usageError(() => settingsFromFlags({ steps: "shadow,50,25,100" }))).toMatch(
      /^invalid rollout settings: steps: steps must be strictly ascending$/,
    );
    expect(usageError(() => settingsFromFlags({ steps: "shadow,5,150" }))).toMatch(
      /^invalid rollout settings/,
    );
    expect(usageError(() => settingsFromFlags({ shadow: "soon" }))).toMatch(/^--shadow: not a duration/);
  });
});

describe("modelship.yaml deploy: under the flags", () => {
  it("deploy.steps and deploy.shadow apply when no flag is given", () => {
    const s = settingsFromFlags({}, file({ steps: ["shadow", 5, 25, 100] }));
    expect(s.steps).toEqual([5, 25, 100]);
    expect(s.shadowMs).toBe(SHADOW_STEP_MS);
    expect(settingsFromFlags({}, file({ steps: "shadow,5,100", shadow: "20s" })).shadowMs).toBe(20_000);
    // A number is seconds, as for --shadow; a duration alone turns the step on.
    expect(settingsFromFlags({}, file({ shadow: 15 })).shadowMs).toBe(15_000);
    const t = settingsFromFlags(
      {},
      file({ steps: "shadow,5,100", shadow: { duration: "10s", maxDisagreement: 0.05, minPairs: 40 } }),
    );
    expect(t.shadowMs).toBe(10_000);
    expect(t.shadow).toMatchObject({ maxDisagreement: 0.05, minPairs: 40, maxMeanAbsDelta: 0.05 });
    // Thresholds alone do not start a shadow step.
    expect(settingsFromFlags({}, file({ shadow: { maxDisagreement: 0.1 } })).shadowMs).toBe(0);
  });

  it("flags win: --steps replaces deploy.steps, --shadow the file's duration", () => {
    const conf = file({ steps: "shadow,5,100", shadow: "20s" });
    expect(settingsFromFlags({ shadow: "5s" }, conf).shadowMs).toBe(5000);
    expect(settingsFromFlags({ steps: "10,100" }, file({ steps: "shadow,5,100" }))).toMatchObject({
      steps: [10, 100],
      shadowMs: 0,
    });
  });

  it("names the file's key in its errors", () => {
    expect(usageError(() => settingsFromFlags({}, file({ steps: "5,shadow" })))).toMatch(
      /^modelship\.yaml deploy\.steps: 'shadow' must be the first step/,
    );
    expect(usageError(() => settingsFromFlags({}, file({ steps: "shadow,5,100", shadow: 0 })))).toBe(
      "modelship.yaml deploy.steps start with shadow but modelship.yaml deploy.shadow 0 turns the shadow step off: drop one of them",
    );
    expect(usageError(() => settingsFromFlags({ shadow: "0" }, file({ steps: "shadow,5,100" })))).toMatch(
      /^modelship\.yaml deploy\.steps start with shadow but --shadow 0/,
    );
    expect(usageError(() => settingsFromFlags({}, file({ shadow: "later" })))).toMatch(
      /^modelship\.yaml deploy\.shadow: not a duration: 'later'/,
    );
  });
});

describe("loadDeployConfig", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("reads only the deploy: section of a modelship.yaml; a typo is a one-line error naming the key", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ms-steps-"));
    dirs.push(dir);
    const good = join(dir, "good.yaml");
    await writeFile(good, "train: { whatever: 1 }\ndeploy:\n  steps: shadow,5,25,50,100\n  shadow: 30s\n");
    const loaded = await loadDeployConfig(good);
    expect(loaded).toEqual({ deploy: { steps: "shadow,5,25,50,100", shadow: "30s" }, file: good });
    expect(settingsFromFlags({}, loaded)).toMatchObject({ steps: [5, 25, 50, 100], shadowMs: 30_000 });
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "deploy:\n  step: shadow,5,100\n");
    const err = await loadDeployConfig(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/deploy\.step: unknown key \(expected one of: steps, shadow\)/);
    const badShadow = join(dir, "bad-shadow.yaml");
    await writeFile(badShadow, "deploy:\n  shadow: { duration: 10s, maxDisagreemnt: 0.1 }\n");
    expect(((await loadDeployConfig(badShadow).catch((e: unknown) => e)) as Error).message).toMatch(
      /deploy\.shadow/,
    );
  });
});
