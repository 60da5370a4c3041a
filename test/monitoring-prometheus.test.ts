import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle } from "../src/bundle/read.js";
import { Ledger } from "../src/ledger/ledger.js";
import { emptyLedger, type VersionEntry } from "../src/ledger/schema.js";
import {
  type MonitoringResult,
  monitoringStatus,
  startMonitoring,
  stopMonitoring,
  syncTargets,
} from "../src/monitoring/index.js";
import { monitoringPaths } from "../src/monitoring/paths.js";
import { runningPid } from "../src/monitoring/prometheus.js";
import { Router } from "../src/router/router.js";
import { trainedBundle } from "./support/bundle.js";
import { repoRoot } from "./support/data.js";
import { postJson, type RunningServer, startServer } from "./support/serving.js";

/**
 * The shipped monitoring stack end to end: a real Prometheus (Debian's) started by startMonitoring
 * in fast mode (1 s scrape/evaluation, rule windows ÷30), scraping two real model servers
 * (node dist/serving/main.js, real trained bundle) found through file_sd written from a real deploy
 * ledger, and a real HAProxy (src/router) in front of them. One server fails every predict
 * (MODELSHIP_CHAOS_ERROR_RATE=1) and is listed in the ledger under a version it does not serve; the
 * other is healthy and matches the ledger.
 */

const BAD_VERSION = "canary-mismatch";

interface AlertRow {
  labels: Record<string, string>;
  state: "pending" | "firing";
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("monitoring stack on a real Prometheus", () => {
  let stateDir: string;
  let good: RunningServer | undefined;
  let bad: RunningServer | undefined;
  let prom: MonitoringResult;
  let router: Router | undefined;
  let modelVersion: string;
  let modelSha: string;
  const seen: AlertRow[] = [];
  let load: Promise<void> | undefined;
  let stopLoad = false;

  const api = async (path: string) => {
    const res = await fetch(`${prom.url}${path}`);
    return (await res.json()) as { status: string; data: unknown; error?: string };
  };
  const alerts = async (): Promise<AlertRow[]> =>
    ((await api("/api/v1/alerts")).data as { alerts: AlertRow[] }).alerts;
  /** Polls the alerts API (recording every state it sees) until `until` holds. */
  const watchAlerts = async (until: (rows: AlertRow[]) => boolean, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const rows = await alerts();
      seen.push(...rows);
      if (until(rows)) return rows;
      await sleep(500);
    }
    throw new Error(
      `alert condition not reached in ${timeoutMs} ms; last: ${JSON.stringify(await alerts())}`,
    );
  };

  function entry(version: string, role: VersionEntry["role"], hostPort: number): VersionEntry {
    const now = new Date().toISOString();
    return {
      version,
      image: { ref: `modelship/airline:${version}`, digest: null },
      model: { name: "airline", version, sha256: modelSha },
      container: { id: `id-${version}`, name: `mstest-${version}`, hostPort },
      role,
      weight: role === "stable" ? 95 : 5,
      createdAt: now,
      updatedAt: now,
      analysis: [],
    };
  }

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "mstest-prom-"));
    const bundle = await trainedBundle();
    const { card } = await readBundle(bundle);
    modelVersion = card.version;
    modelSha = card.model.sha256;
    // A 20-prediction drift window flushed at once, so the drift gauges fill within the test.
    const drift = {
      MODELSHIP_DRIFT_WINDOW: "20",
      MODELSHIP_DRIFT_CHUNK: "1",
      MODELSHIP_DRIFT_FLUSH_MS: "100",
    };
    [good, bad] = await Promise.all([
      startServer(bundle, drift),
      startServer(bundle, { ...drift, MODELSHIP_CHAOS_ERROR_RATE: "1" }),
    ]);
    // Ledger at first: only the stable version (the canary comes with the "deploy" below).
    const ledger = emptyLedger();
    ledger.versions = [entry(modelVersion, "stable", good.port)];
    await new Ledger(stateDir).write(ledger);
    // The edge, as `host init` leaves it: settings in router.json (startMonitoring reads the
    // exporter's port from there), the stable version at 100%.
    router = await Router.open(stateDir, {
      edge: { bind: "127.0.0.1", port: await freePort() },
      metrics: { bind: "127.0.0.1", port: await freePort() },
      health: { interMs: 300, fastInterMs: 100, downInterMs: 300, fall: 2, rise: 2 },
      timeouts: { hardStopAfterMs: 5_000 },
    });
    await router.saveSettings();
    await router.apply({ servers: [{ name: modelVersion, port: good.port, weight: 100 }] });
    prom = await startMonitoring({
      stateDir,
      port: await freePort(),
      fast: true,
      scrapeInterval: "1s",
      evaluationInterval: "1s",
      assets: join(repoRoot, "monitoring"),
    });
  });

  afterAll(async () => {
    stopLoad = true;
    await load;
    if (stateDir) await stopMonitoring(stateDir);
    await router?.stop();
    await Promise.all([good?.stop(), bad?.stop()]);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("starts Prometheus as a daemon with the rendered config, and a second start only reloads it", async () => {
    expect(prom.started).toBe(true);
    expect(await runningPid(monitoringPaths(stateDir))).toBe(prom.pid);
    const again = await startMonitoring({
      stateDir,
      assets: join(repoRoot, "monitoring"),
    });
    expect(again).toMatchObject({ started: false, pid: prom.pid, url: prom.url });
    const rules = (await api("/api/v1/rules")).data as { groups: { rules: { name: string }[] }[] };
    expect(rules.groups.flatMap((g) => g.rules.map((r) => r.name))).toContain("ModelHighErrorRate");
  });

  it("targets follow the ledger: a deploy adds the canary with its ledger labels", async () => {
    const ledger = await new Ledger(stateDir).read();
    ledger.versions.push(entry(BAD_VERSION, "canary", bad!.port));
    await new Ledger(stateDir).write(ledger);
    await syncTargets(stateDir);
    type Target = { labels: Record<string, string>; health: string };
    const end = Date.now() + 20_000;
    let active: Target[] = [];
    while (Date.now() < end) {
      active = ((await api("/api/v1/targets")).data as { activeTargets: Target[] }).activeTargets.filter(
        (t) => t.labels.job === "modelship-models",
      );
      if (active.length === 2 && active.every((t) => t.health === "up")) break;
      await sleep(300);
    }
    expect(active.map((t) => t.labels.ledger_version).sort()).toEqual([BAD_VERSION, modelVersion].sort());
    const canary = active.find((t) => t.labels.ledger_version === BAD_VERSION)!;
    expect(canary.labels).toMatchObject({
      instance: `127.0.0.1:${bad!.port}`,
      ledger_role: "canary",
      ledger_sha256: modelSha,
    });
    expect(active.every((t) => t.health === "up")).toBe(true);
    const haproxy = ((await api("/api/v1/targets")).data as { activeTargets: Target[] }).activeTargets.find(
      (t) => t.labels.job === "haproxy",
    );
    expect(haproxy?.labels.instance).toBe(`127.0.0.1:${router!.settings.metrics.port}`);

    // Then the edge sends it traffic (in this order, as a deploy does: routing a version the
    // monitoring does not know yet is what UnknownVersionRouted is for).
    await router!.apply({
      servers: [
        { name: modelVersion, port: good!.port, weight: 50 },
        { name: BAD_VERSION, port: bad!.port, weight: 50 },
      ],
    });
    expect((await router!.waitHealthy(BAD_VERSION, 10_000)).healthy).toBe(true);
  });

  it("fires ModelHighErrorRate and ModelVersionMismatch for the failing, mislabelled canary only", async () => {
    // ~40 req/s through the edge, split 50/50: the chaos canary answers every predict with 500,
    // HAProxy retries those on the stable version, so users get 200s — only the monitoring sees it.
    const userStatuses = new Map<number, number>();
    load = (async () => {
      const texts = ["@united thanks, great flight", "@united lost my bag again, awful", "@delta on time"];
      let i = 0;
      while (!stopLoad) {
        const text = texts[i++ % texts.length];
        // A connection error counts as status 0: users must see none.
        const ask = () =>
          postJson(`${router!.edgeUrl()}/predict`, { text }).then(
            (r) => r.status,
            () => 0,
          );
        const [first, second] = await Promise.all([ask(), ask(), sleep(50)]);
        for (const status of [first, second]) userStatuses.set(status, (userStatuses.get(status) ?? 0) + 1);
      }
    })();

    const firing = (rows: AlertRow[], name: string) =>
      rows.filter((a) => a.labels.alertname === name && a.state === "firing");
    const rows = await watchAlerts(
      (r) => firing(r, "ModelHighErrorRate").length > 0 && firing(r, "ModelVersionMismatch").length > 0,
      40_000,
    );
    expect(firing(rows, "ModelHighErrorRate").map((a) => a.labels)).toEqual([
      expect.objectContaining({ ledger_version: BAD_VERSION, ledger_role: "canary", severity: "critical" }),
    ]);
    expect(firing(rows, "ModelVersionMismatch").map((a) => a.labels)).toEqual([
      expect.objectContaining({
        ledger_version: BAD_VERSION,
        version: modelVersion,
        instance: `127.0.0.1:${bad!.port}`,
      }),
    ]);

    // Keep watching a few more evaluations: the healthy stable version (no 5xx, serves what the
    // ledger says) never even goes pending on these two; nothing else about it fires. (Latency and
    // scrape-based alerts may blip to pending on this loaded 2-core host, which is what `for:` absorbs.)
    await watchAlerts(() => false, 4_000).catch(() => {});
    const aboutGood = seen.filter((a) => a.labels.ledger_version === modelVersion);
    expect(
      aboutGood
        .filter((a) => ["ModelHighErrorRate", "ModelVersionMismatch"].includes(a.labels.alertname!))
        .map((a) => `${a.labels.alertname} ${a.state}`),
    ).toEqual([]);
    // (ModelNoTraffic is left out: the stable version really had no traffic before the load began.)
    expect(
      aboutGood
        .filter((a) => a.state === "firing" && a.labels.alertname !== "ModelNoTraffic")
        .map((a) => a.labels.alertname),
    ).toEqual([]);
    // Users saw only 200s, so the edge alerts stay quiet, and the routing matches the ledger.
    expect([...userStatuses.keys()]).toEqual([200]);
    expect(userStatuses.get(200)).toBeGreaterThan(100);
    const edgeOrRouting = seen.filter(
      (a) =>
        ["EdgeHighErrorRate", "EdgeDown", "StableVersionNotRouted", "UnknownVersionRouted"].includes(
          a.labels.alertname!,
        ) && a.state === "firing",
    );
    expect(edgeOrRouting.map((a) => `${a.labels.alertname} ${a.state} ${JSON.stringify(a.labels)}`)).toEqual(
      [],
    );
  });

  it("every Grafana panel query parses and runs on Prometheus; traffic panels return both versions", async () => {
    const dash = JSON.parse(await readFile(join(repoRoot, "monitoring/grafana/modelship.json"), "utf8")) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const queries = dash.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })),
    );
    expect(queries.length).toBeGreaterThan(15);
    const results = new Map<string, { metric: Record<string, string> }[]>();
    for (const q of queries) {
      // What Grafana substitutes before sending: the rate interval and the "All" version choice.
      const expr = q.expr.replaceAll("$__rate_interval", "10s").replaceAll("$version", ".*");
      const answer = await api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      expect(answer.error, `${q.title}: ${expr}`).toBeUndefined();
      expect(answer.status, `${q.title}: ${expr}`).toBe("success");
      results.set(q.expr, (answer.data as { result: { metric: Record<string, string> }[] }).result);
    }
    const reqs = queries.find((q) => q.title.startsWith("Requests/s per version"))!;
    expect(
      results
        .get(reqs.expr)!
        .map((r) => r.metric.ledger_version)
        .sort(),
    ).toEqual([BAD_VERSION, modelVersion].sort());
    const split = queries.find((q) => q.title.startsWith("Traffic split"))!;
    expect(
      results
        .get(split.expr)!
        .map((r) => r.metric.server)
        .sort(),
    ).toEqual([BAD_VERSION, modelVersion].sort());
    const mix = queries.find((q) => q.title.startsWith("Class mix"))!;
    const goodMix = results.get(mix.expr)!.filter((r) => r.metric.ledger_version === modelVersion);
    expect(goodMix.map((r) => r.metric.class).sort()).toEqual(["negative", "positive"]);
  });

  it("ModelDrift goes active on the server's own drift gauges: three repeated texts are not the airline reference", async () => {
    // The load above sends the stable version three texts over and over; its window is full.
    const rows = await watchAlerts(
      (r) => r.some((a) => a.labels.alertname === "ModelDrift" && a.labels.ledger_version === modelVersion),
      20_000,
    );
    const driftAlerts = rows.filter((a) => a.labels.alertname === "ModelDrift");
    expect(driftAlerts.length).toBeGreaterThan(0);
    for (const a of driftAlerts) {
      // Only the stable one: the canary fails every predict, so its window never fills (NaN gauges).
      expect(a.labels.ledger_version).toBe(modelVersion);
      const stat = a.labels.statistic!;
      expect(["score_psi", "class_mix_distance", "input_length_psi", "oov_rate"]).toContain(stat);
      const value = async (name: string) => {
        const q = `${name}{ledger_version="${modelVersion}"}`;
        const r = (await api(`/api/v1/query?query=${encodeURIComponent(q)}`)).data as {
          result: { value: [number, string] }[];
        };
        return Number(r.result[0]!.value[1]);
      };
      expect(await value(`modelship_drift_${stat}`)).toBeGreaterThan(
        await value(`modelship_drift_${stat}_threshold`),
      );
    }
    const canaryGauge = (
      await api(
        `/api/v1/query?query=${encodeURIComponent(`modelship_drift_score_psi{ledger_version="${BAD_VERSION}"}`)}`,
      )
    ).data as { result: { value: [number, string] }[] };
    expect(canaryGauge.result[0]?.value[1]).toBe("NaN");
  });

  it("fires StableVersionNotRouted when the edge takes the ledger's stable version out", async () => {
    await router!.setWeights({ [modelVersion]: 0, [BAD_VERSION]: 100 });
    const rows = await watchAlerts(
      (r) => r.some((a) => a.labels.alertname === "StableVersionNotRouted" && a.state === "firing"),
      20_000,
    );
    expect(rows.filter((a) => a.labels.alertname === "StableVersionNotRouted").map((a) => a.labels)).toEqual([
      expect.objectContaining({ ledger_version: modelVersion, server: modelVersion }),
    ]);
    const status = await monitoringStatus(stateDir);
    expect(status).toMatchObject({ configured: true, ready: true, pid: prom.pid, targets: 2, url: prom.url });
    expect(status.firing).toEqual(expect.arrayContaining(["ModelHighErrorRate", "StableVersionNotRouted"]));
  });

  it("stopMonitoring ends the daemon", async () => {
    stopLoad = true;
    await load;
    expect(await stopMonitoring(stateDir)).toBe(true);
    expect(await runningPid(monitoringPaths(stateDir))).toBeUndefined();
    expect(await stopMonitoring(stateDir)).toBe(false);
    expect(await monitoringStatus(stateDir)).toMatchObject({ configured: true, ready: false, firing: [] });
  });
});
