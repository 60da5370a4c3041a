import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modelInfo } from "../serving/routes/status.js";
import { readBundle } from "../src/bundle/read.js";
import { Ledger } from "../src/ledger/ledger.js";
import { emptyLedger } from "../src/ledger/schema.js";
import { trainedBundle } from "./support/bundle.js";
import { repoRoot } from "./support/data.js";

const exec = promisify(execFile);

/**
 * Runs the real CLI; resolves with the exit code instead of throwing. Retried once when dist/ could not
 * be loaded — another test run in the same tree may be recompiling it at that moment.
 */
async function gate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const first = await gateOnce(args);
  const torn = /does not provide an export named|ERR_MODULE_NOT_FOUND|Unexpected end of input/;
  return torn.test(first.stderr) ? gateOnce(args) : first;
}

async function gateOnce(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec("node", ["bin/modelship.js", "gate", ...args], { cwd: repoRoot });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("modelship gate on real bundles (onnxruntime-node re-runs the golden examples)", () => {
  let good: string;
  let swapped: string;
  let dir: string;
  beforeAll(async () => {
    good = await trainedBundle();
    swapped = await trainedBundle({ swapped: true });
    dir = await mkdtemp(join(tmpdir(), "mstest-gate-cli-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("first deploy: says so plainly, checks golden parity for real, passes", async () => {
    const golden = JSON.parse(await readFile(join(good, "model.json"), "utf8")).golden.length;
    const r = await gate("--candidate", good, "--policy", "/dev/null");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("first deploy — only absolute rules apply");
    expect(r.stdout).toMatch(new RegExp(`✓\\s+golden parity \\(${golden} examples, max \\|Δp\\|\\)`));
    expect(r.stdout).toMatch(/·\s+accuracy\s+0\.9\d{3}/);
    expect(r.stdout).toContain("Gate passed.");
  });

  it("a model with flipped labels regresses the negative class: exit 1, rule named, JSON verdict", async () => {
    const r = await gate("--candidate", swapped, "--baseline", good, "--json", "--policy", "/dev/null");
    expect(r.code).toBe(1);
    const v = JSON.parse(r.stdout);
    expect(v.passed).toBe(false);
    expect(v.baseline.name).toBe("airline");
    expect(v.failing).toHaveLength(1);
    expect(v.failing[0]).toMatch(
      /^maxDrop\.classF1\[negative\]: F1 \(negative\) 0\.\d{4} vs baseline 0\.9\d{3} dropped/,
    );
    expect(r.stderr.trim()).toBe(`modelship: gate failed: ${v.failing[0]}`);
  });

  it("golden parity: a card whose recorded probabilities do not match model.onnx fails", async () => {
    const tampered = join(dir, "tampered");
    await cp(good, tampered, { recursive: true });
    const card = JSON.parse(await readFile(join(tampered, "model.json"), "utf8"));
    const p = card.golden[2].expected.probabilities;
    p[0] = Math.min(1, p[0] + 0.01);
    p[1] = Math.max(0, p[1] - 0.01);
    await writeFile(join(tampered, "model.json"), JSON.stringify(card));
    const md = join(dir, "report.md");
    const r = await gate(
      "--candidate",
      tampered,
      "--baseline",
      good,
      "--markdown",
      md,
      "--policy",
      "/dev/null",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ goldenParity: 1 of \d+ differ; example 3 differs by 1\.00e-2/);
    const report = await readFile(md, "utf8");
    expect(report.startsWith("<!-- modelship:gate -->")).toBe(true);
    expect(report).toContain("Confusion matrix");
  });

  it("baseline from a saved `modelship status --json`: the stable version's bundle", async () => {
    const status = join(dir, "status.json");
    await writeFile(
      status,
      JSON.stringify({
        edge: { url: "http://127.0.0.1:1" },
        versions: [
          { version: "20261122.033505-f89b2ed2", role: "stable", weight: 100, image: "x", bundle: good },
        ],
      }),
    );
    const r = await gate("--candidate", good, "--baseline", status, "--json", "--policy", "/dev/null");
    expect(r.code).toBe(0);
    const v = JSON.parse(r.stdout);
    expect(v.baselineNote).toContain(`status file ${status}`);
    expect(v.rows.find((x: { rule: string }) => x.rule === "maxDrop.accuracy").delta).toBe(0);
  });

  it("baseline from the host's status: the stable container's own /model-info (the real server's shape)", async () => {
    const { card } = await readBundle(good);
    const server = createServer((req, res) => {
      res.writeHead(req.url === "/model-info" ? 200 : 404, { "content-type": "application/json" });
      res.end(JSON.stringify(req.url === "/model-info" ? modelInfo(card) : { error: "not found" }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const status = join(dir, "status-live.json");
      const entry = {
        version: card.version,
        role: "stable",
        weight: 100,
        image: "m:1",
        container: { id: "x", name: "x", hostPort: port },
      };
      await writeFile(
        status,
        JSON.stringify({ edge: { url: "http://127.0.0.1:1", running: true }, versions: [entry] }),
      );
      const r = await gate("--candidate", swapped, "--baseline", status, "--json", "--policy", "/dev/null");
      const v = JSON.parse(r.stdout);
      expect(v.baselineNote).toBe(
        `Baseline: production ${card.version} (metrics from http://127.0.0.1:${port}/model-info).`,
      );
      expect(v.failing.map((f: string) => f.split(":")[0])).toEqual(["maxDrop.classF1[negative]"]);

      // The same through the real ledger and `modelship status --json` (what --baseline-from-host runs).
      const stateDir = join(dir, "state");
      const now = new Date().toISOString();
      await new Ledger(stateDir).write({
        ...emptyLedger(),
        versions: [
          {
            version: card.version,
            image: { ref: "localhost/mstest-model:1", digest: null },
            model: { name: card.name, version: card.version, sha256: card.model.sha256 },
            container: { id: "c0ffee", name: "mstest-gate-baseline", hostPort: port },
            role: "stable",
            weight: 100,
            createdAt: now,
            updatedAt: now,
            analysis: [],
          },
        ],
      });
      const host = await gate(
        "--candidate",
        swapped,
        "--baseline-from-host",
        "--state-dir",
        stateDir,
        "--json",
        "--policy",
        "/dev/null",
      );
      expect(host.stderr).toBe(`modelship: gate failed: ${JSON.parse(host.stdout).failing.join("; ")}\n`);
      expect(JSON.parse(host.stdout).baselineNote).toBe(
        `Baseline: production ${card.version} (metrics from http://127.0.0.1:${port}/model-info).`,
      );
      const empty = await gate(
        "--candidate",
        good,
        "--baseline-from-host",
        "--state-dir",
        join(dir, "empty-state"),
        "--policy",
        "/dev/null",
      );
      expect(empty.code).toBe(0);
      expect(empty.stdout).toContain(
        "No production baseline (host ledger has no stable version): first deploy",
      );

      // The container answers with another version than the ledger's stable one: refuse (busy), don't guess.
      await writeFile(
        status,
        JSON.stringify({ versions: [{ ...entry, version: "20990101.000000-00000000" }] }),
      );
      const busy = await gate("--candidate", swapped, "--baseline", status);
      expect(busy.code).toBe(4);
      expect(busy.stderr).toMatch(/rollout is in progress/);
    } finally {
      server.close();
    }
  });

  it("bad input: one line, exit 2, no stack trace", async () => {
    const both = await gate("--candidate", good, "--baseline", good, "--baseline-from-host");
    expect(both.code, both.stderr).toBe(2);
    expect([both.code, both.stderr.trim()]).toEqual([
      2,
      "modelship: choose one baseline source: --baseline, --baseline-from-host or --baseline-release",
    ]);
    const missing = await gate("--candidate", join(dir, "nope"));
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringContaining("does not exist")]);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    const policy = join(dir, "bad.yaml");
    await writeFile(policy, "gate:\n  maxDrop:\n    accuracy: -1\n");
    const bad = await gate("--candidate", good, "--policy", policy);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/gate\.maxDrop\.accuracy: /);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});
