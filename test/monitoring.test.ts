import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Ledger } from "../src/ledger/ledger.js";
import { emptyLedger, type VersionEntry } from "../src/ledger/schema.js";
import { monitoringStatus, startMonitoring } from "../src/monitoring/index.js";
import { monitoringPaths } from "../src/monitoring/paths.js";
import { checkConfig, renderPrometheusUnit } from "../src/monitoring/prometheus.js";
import { FAST_FACTOR, renderPrometheusConfig, renderRules, seconds } from "../src/monitoring/render.js";
import { MonitoringSettings } from "../src/monitoring/schema.js";
import {
  handOverTargets,
  readTargets,
  syncTargets,
  targetsFromLedger,
  writeTargets,
} from "../src/monitoring/targets.js";
import { ExitCode, UserError } from "../src/util/errors.js";
import { repoRoot } from "./support/data.js";

const exec = promisify(execFile);
const assets = join(repoRoot, "monitoring");

async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec("promtool", args, { cwd: assets });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

function entry(
  version: string,
  role: VersionEntry["role"],
  hostPort: number | null,
  sha256?: string,
): VersionEntry {
  const now = new Date().toISOString();
  return {
    version,
    image: { ref: `modelship/airline:${version}`, digest: null },
    model: sha256 ? { name: "airline", version, sha256 } : null,
    container: hostPort ? { id: `id-${version}`, name: `mstest-${version}`, hostPort } : null,
    role,
    weight: role === "stable" ? 100 : 0,
    createdAt: now,
    updatedAt: now,
    analysis: [],
  };
}

describe("shipped monitoring files (promtool)", () => {
  it("prometheus.yml and the rules pass promtool check", async () => {
    const config = await promtool("check", "config", "prometheus.yml");
    expect(config.out).toContain("SUCCESS");
    expect(config.code).toBe(0);
    const rules = await promtool("check", "rules", "rules/modelship.rules.yml");
    expect(rules.code).toBe(0);
    expect(rules.out).toMatch(/SUCCESS: 10 rules found/);
  });

  it("every alert has rule unit tests that pass (firing and not firing)", async () => {
    const tests = (await readdir(join(assets, "rules/tests"))).filter((f) => f.endsWith(".yml"));
    expect(tests.length).toBeGreaterThan(0);
    const result = await promtool("test", "rules", ...tests.map((f) => join("rules/tests", f)));
    expect(result.out).toContain("SUCCESS");
    expect(result.code).toBe(0);

    // Coverage: each alert appears in a test expecting it to fire and in one expecting silence.
    const rules = parse(await readFile(join(assets, "rules/modelship.rules.yml"), "utf8")) as {
      groups: { rules: { alert: string }[] }[];
    };
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    const fired = new Set<string>();
    const silent = new Set<string>();
    for (const f of tests) {
      const doc = parse(await readFile(join(assets, "rules/tests", f), "utf8")) as {
        tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
      };
      for (const t of doc.tests)
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts?.length ? fired : silent).add(a.alertname);
    }
    for (const alert of alerts) {
      expect(fired, `${alert} has no firing test`).toContain(alert);
      expect(silent, `${alert} has no not-firing test`).toContain(alert);
    }
  });

  it("promtool test rules fails when a rule changes (the tests can fail)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mstest-rules-"));
    try {
      await cp(join(assets, "rules"), join(dir, "rules"), { recursive: true });
      const file = join(dir, "rules/modelship.rules.yml");
      await writeFile(file, (await readFile(file, "utf8")).replace(") > 0.05\n", ") > 0.6\n"));
      const result = await promtool("test", "rules", join(dir, "rules/tests/modelship.rules.test.yml"));
      expect(result.code).not.toBe(0);
      expect(result.out).toContain("ModelHighErrorRate");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("grafana dashboard", () => {
  it("is valid JSON with unique panel ids, grid positions and a PromQL query per target", async () => {
    const dash = JSON.parse(await readFile(join(assets, "grafana/modelship.json"), "utf8")) as {
      uid: string;
      panels: { id: number; type: string; title: string; gridPos: object; targets?: { expr: string }[] }[];
      templating: { list: { name: string }[] };
    };
    expect(dash.uid).toBe("modelship");
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queries = dash.panels.filter((p) => p.type !== "row");
    for (const p of queries) {
      expect(p.gridPos, p.title).toBeTruthy();
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.expr.trim(), p.title).not.toBe("");
    }
    const titles = queries.map((p) => p.title.toLowerCase()).join("\n");
    for (const topic of [
      "traffic split",
      "requests/s per version",
      "5xx",
      "latency percentiles",
      "class mix",
      "drift",
    ])
      expect(titles).toContain(topic);
    expect(dash.templating.list.map((v) => v.name)).toEqual(["datasource", "version"]);
  });
});

describe("rendering for a state dir", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mstest-monitoring-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("renders a prometheus.yml promtool accepts, with this host's ports and relative paths", async () => {
    const settings = MonitoringSettings.parse({
      stateDir: dir,
      listen: { port: 19099 },
      scrapeInterval: "30s",
    });
    const paths = monitoringPaths(dir);
    const text = renderPrometheusConfig(await readFile(join(assets, "prometheus.yml"), "utf8"), {
      settings,
      paths,
      haproxyTarget: "127.0.0.1:18404",
    });
    const doc = parse(text) as {
      global: Record<string, string>;
      rule_files: string[];
      scrape_configs: {
        job_name: string;
        static_configs?: { targets: string[] }[];
        file_sd_configs?: { files: string[] }[];
      }[];
    };
    expect(doc.global.scrape_interval).toBe("30s");
    expect(doc.global.scrape_timeout).toBe("5s");
    expect(doc.rule_files).toEqual(["rules/modelship.rules.yml"]);
    const job = (name: string) => doc.scrape_configs.find((j) => j.job_name === name)!;
    expect(job("haproxy").static_configs![0]!.targets).toEqual(["127.0.0.1:18404"]);
    expect(job("prometheus").static_configs![0]!.targets).toEqual(["127.0.0.1:19099"]);
    expect(job("modelship-models").file_sd_configs![0]!.files).toEqual(["targets/*.json"]);

    await writeTargets(paths.modelTargets, []);
    await mkdir(paths.rulesDir, { recursive: true });
    await writeFile(paths.rules, await readFile(join(assets, "rules/modelship.rules.yml"), "utf8"));
    await writeFile(paths.config, text);
    await expect(checkConfig(settings, paths.config)).resolves.toBeUndefined();
  });

  it("rejects a template without the scrape jobs it fills in", () => {
    const settings = MonitoringSettings.parse({ stateDir: dir });
    expect(() =>
      renderPrometheusConfig("global: {}\nrule_files: []\nscrape_configs: [{job_name: other}]\n", {
        settings,
        paths: monitoringPaths(dir),
        haproxyTarget: "127.0.0.1:8404",
      }),
    ).toThrow(/lacks the scrape job 'modelship-models'/);
  });

  it("fast mode divides every window and for: by 30 and still passes promtool", async () => {
    const original = await readFile(join(assets, "rules/modelship.rules.yml"), "utf8");
    const settings = MonitoringSettings.parse({ stateDir: dir, fast: true, scrapeInterval: "1s" });
    const fast = renderRules(original, settings);
    type Rules = { groups: { rules: { alert: string; expr: string; for?: string }[] }[] };
    const before = (parse(original) as Rules).groups.flatMap((g) => g.rules);
    const after = (parse(fast) as Rules).groups.flatMap((g) => g.rules);
    expect(after.map((r) => r.alert)).toEqual(before.map((r) => r.alert));
    for (const [i, rule] of after.entries()) {
      const was = before[i]!;
      if (was.for)
        expect(seconds(rule.for!), rule.alert).toBe(Math.max(2, Math.round(seconds(was.for) / FAST_FACTOR)));
      const ranges = (s: string) => [...s.matchAll(/\[(\w+)\]/g)].map((m) => seconds(m[1]!));
      expect(ranges(rule.expr), rule.alert).toEqual(
        ranges(was.expr).map((s) => Math.max(2, Math.round(s / FAST_FACTOR))),
      );
    }
    expect(fast).toContain("[10s]");
    const file = join(dir, "fast.rules.yml");
    await writeFile(file, fast);
    expect((await promtool("check", "rules", file)).code).toBe(0);
    expect(renderRules(original, MonitoringSettings.parse({ stateDir: dir }))).toBe(original);
  });

  it("renders a systemd unit that checks the config before starting and reloads with SIGHUP", () => {
    const settings = MonitoringSettings.parse({ stateDir: dir, listen: { port: 9191 } });
    const unit = renderPrometheusUnit(settings, monitoringPaths(dir));
    expect(unit).toContain(`ExecStartPre=/usr/bin/promtool check config ${dir}/monitoring/prometheus.yml`);
    expect(unit).toContain("--web.listen-address=127.0.0.1:9191");
    expect(unit).toContain("ExecReload=/bin/kill -HUP $MAINPID");
  });

  it("refuses bad settings with one clear line", async () => {
    const err = await startMonitoring({ stateDir: dir, port: 70000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.usage);
    expect((err as UserError).message).toMatch(/^invalid monitoring settings: listen\.port/);
    const missing = await startMonitoring({ stateDir: dir, prometheusBin: join(dir, "nope") }).catch(
      (e: unknown) => e,
    );
    expect((missing as UserError).exitCode).toBe(ExitCode.environment);
    expect((missing as UserError).message).toContain("nope not found");
  });

  it("checkConfig reports promtool's reason for a broken rule file", async () => {
    const settings = MonitoringSettings.parse({ stateDir: dir });
    const paths = monitoringPaths(dir);
    await writeFile(join(dir, "prometheus.yml"), "rule_files: [bad.yml]\nscrape_configs: []\n");
    await writeFile(
      join(dir, "bad.yml"),
      "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: rate(foo[5m]\n",
    );
    const err = await checkConfig(settings, join(dir, "prometheus.yml")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/promtool rejects .*prometheus\.yml/);
    expect(paths.config).toContain(dir);
  });
});

describe("file_sd targets from the deploy ledger", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mstest-targets-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("lists running stable/canary/standby containers with the ledger's labels", () => {
    const ledger = emptyLedger();
    ledger.versions = [
      entry("v1", "standby", 41001, "a".repeat(64)),
      entry("v2", "stable", 41002, "b".repeat(64)),
      entry("v3", "canary", 41003),
      entry("v0", "retired", 41000, "c".repeat(64)),
      entry("v4", "failed", 41004),
      entry("v5", "canary", null),
    ];
    expect(targetsFromLedger(ledger)).toEqual([
      { address: "127.0.0.1:41001", version: "v1", role: "standby", sha256: "a".repeat(64) },
      { address: "127.0.0.1:41002", version: "v2", role: "stable", sha256: "b".repeat(64) },
      { address: "127.0.0.1:41003", version: "v3", role: "canary" },
    ]);
  });

  it("syncTargets writes the file_sd JSON Prometheus reads, replacing it atomically on each change", async () => {
    const ledger = new Ledger(dir);
    const data = emptyLedger();
    data.versions = [entry("v1", "stable", 41001, "a".repeat(64))];
    await ledger.write(data);
    await syncTargets(dir);
    const file = monitoringPaths(dir).modelTargets;
    expect(await readTargets(file)).toEqual([
      {
        targets: ["127.0.0.1:41001"],
        labels: { ledger_version: "v1", ledger_role: "stable", ledger_sha256: "a".repeat(64) },
      },
    ]);

    data.versions = [entry("v1", "standby", 41001, "a".repeat(64)), entry("v2", "stable", 41002)];
    await ledger.write(data);
    // Concurrent syncs (two modelship processes) each leave a complete file, never a torn one.
    await Promise.all([syncTargets(dir), syncTargets(dir), syncTargets(dir)]);
    const after = await readTargets(file);
    expect(after.map((g) => g.labels.ledger_role)).toEqual(["standby", "stable"]);
    expect(after[1]!.labels).not.toHaveProperty("ledger_sha256");
    const leftovers = (await readdir(monitoringPaths(dir).targetsDir)).filter((f) => f.endsWith(".tmp"));
    expect(leftovers).toEqual([]);
  });

  it("an empty or missing ledger gives an empty target list (Prometheus then scrapes no model)", async () => {
    expect(await monitoringStatus(dir)).toEqual({ configured: false, ready: false, targets: 0, firing: [] });
    expect(await syncTargets(dir)).toEqual([]);
    expect(JSON.parse(await readFile(monitoringPaths(dir).modelTargets, "utf8"))).toEqual([]);
  });

  it.runIf(process.getuid?.() === 0)(
    "hands the targets dir to the sudo caller so deploys can rewrite it",
    async () => {
      await syncTargets(dir);
      expect(await handOverTargets(dir, { uid: 65534, gid: 65534 })).toBe(true);
      const paths = monitoringPaths(dir);
      for (const p of [paths.targetsDir, paths.modelTargets]) expect((await stat(p)).uid).toBe(65534);
      const saved = { uid: process.env.SUDO_UID, gid: process.env.SUDO_GID };
      try {
        delete process.env.SUDO_UID;
        expect(await handOverTargets(dir)).toBe(false);
      } finally {
        if (saved.uid !== undefined) process.env.SUDO_UID = saved.uid;
      }
    },
  );

  it("rejects bad targets with one line naming the target, and leaves the old file in place", async () => {
    const file = join(dir, "t.json");
    await writeTargets(file, [{ address: "127.0.0.1:9001", version: "v1", role: "stable" }]);
    const before = await readFile(file, "utf8");
    await expect(writeTargets(file, [{ address: "no-port", version: "v1", role: "stable" }])).rejects.toThrow(
      /^scrape target #1: address: address must be host:port$/,
    );
    await expect(
      writeTargets(file, [
        { address: "127.0.0.1:9001", version: "v1", role: "stable" },
        { address: "127.0.0.1:9002", version: "v2", role: "retired" },
      ]),
    ).rejects.toThrow(/^scrape target #2: role:/);
    await expect(
      writeTargets(file, [
        { address: "127.0.0.1:9001", version: "v1", role: "stable" },
        { address: "127.0.0.1:9001", version: "v2", role: "canary" },
      ]),
    ).rejects.toThrow("two targets share one address");
    expect(await readFile(file, "utf8")).toBe(before);
  });
});
