import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repairRouter } from "../src/host/repair.js";
import { renderUnit } from "../src/host/systemd.js";
import { Router, RouterSettings } from "../src/router/index.js";
import { runCli } from "./support/cli.js";
import { killDaemonsOf } from "./support/leftovers.js";

const exec = promisify(execFile);
const env = { ...process.env, DOCKER_HOST: process.env.DOCKER_HOST ?? "unix:///run/modelship/podman.sock" };

const cli = (args: string[]) => runCli(args, { env });

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

interface CheckJson {
  ok: boolean;
  checks: { name: string; ok: boolean; detail: string; fix?: string }[];
}

describe("modelship host init|check|repair", () => {
  let stateDir: string;
  let edgePort: number;
  let metricsPort: number;

  beforeAll(async () => {
    stateDir = join(await mkdtemp(join(tmpdir(), "mstest-host-")), "state");
    edgePort = await freePort();
    metricsPort = await freePort();
  });

  afterAll(async () => {
    const live = await Router.open(stateDir)
      .then((r) => r.running())
      .catch(() => undefined);
    if (live) process.kill(live.pid, "SIGKILL");
    await killDaemonsOf(join(stateDir, ".."));
    await rm(join(stateDir, ".."), { recursive: true, force: true });
  });

  it("check on a bare host: ✗ lines with the command that fixes each, exit 3", async () => {
    const r = await cli(["host", "check", "--state-dir", stateDir]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain(`✗ state dir: ${stateDir} does not exist`);
    expect(r.stdout).toContain(`fix: modelship host init --state-dir ${stateDir}`);
    expect(r.stdout).toMatch(/✗ haproxy running: not running\n\s+fix: modelship host repair --state-dir/);
    expect(r.stdout).toMatch(/✓ haproxy installed: \/usr\/sbin\/haproxy 2\.\d/);
    expect(r.stdout).toContain("Host not ready");
  });

  it("init sets up the state dir, config and a detached HAProxy; check then passes", async () => {
    const init = await cli([
      "host",
      "init",
      "--state-dir",
      stateDir,
      "--edge-port",
      String(edgePort),
      "--edge-bind",
      "127.0.0.1",
      "--metrics-port",
      String(metricsPort),
    ]);
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/Starting HAProxy\.\.\. ✓ pid \d+/);
    expect(init.stdout).toContain(`edge http://127.0.0.1:${edgePort}`);
    expect((await stat(stateDir)).mode & 0o777).toBe(0o750);
    const router = await Router.open(stateDir);
    expect(router.settings.edge.port).toBe(edgePort);
    expect(await readFile(router.paths.config, "utf8")).toContain(`bind 127.0.0.1:${edgePort}`);
    // the edge answers (503: no model deployed yet) and the exporter serves metrics
    expect((await fetch(`http://127.0.0.1:${edgePort}/predict`)).status).toBe(503);
    expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toContain(
      "haproxy_process_",
    );

    const check = await cli(["host", "check", "--state-dir", stateDir, "--json"]);
    const report = JSON.parse(check.stdout) as CheckJson;
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(check.code).toBe(0);
    expect(report.checks.map((c) => c.name)).toEqual([
      "state dir",
      "container engine",
      "haproxy installed",
      "haproxy config",
      "haproxy running",
      "runtime API",
      "edge and exporter",
      "router state",
      "deploy ledger",
    ]);
  });

  it("check notices HAProxy gone (exit 3) and `host repair` brings it back", async () => {
    const router = await Router.open(stateDir);
    const live = await router.running();
    expect(live).toBeDefined();
    process.kill(live!.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));

    const check = await cli(["host", "check", "--state-dir", stateDir, "--json"]);
    expect(check.code).toBe(3);
    const failed = (JSON.parse(check.stdout) as CheckJson).checks.filter((c) => !c.ok);
    expect(failed.map((c) => c.name)).toEqual(["haproxy running", "runtime API"]);
    expect(failed[0]?.fix).toBe(`modelship host repair --state-dir ${stateDir}`);

    const repair = await cli(["host", "repair", "--state-dir", stateDir]);
    expect(repair.code).toBe(0);
    expect(repair.stdout).toMatch(/Reconciling HAProxy\.\.\. ✓/);
    expect(await router.running()).toBeDefined();
    expect((await cli(["host", "check", "--state-dir", stateDir])).code).toBe(0);
  });

  it("check flags a server added behind our back; `host repair` takes it out", async () => {
    const router = await Router.open(stateDir);
    await router.api.exec("add server models/rogue 127.0.0.1:9", /New server registered/);
    const check = await cli(["host", "check", "--state-dir", stateDir]);
    expect(check.code).toBe(3);
    expect(check.stdout).toContain("✗ router state: rogue not desired");
    const repair = await cli(["host", "repair", "--state-dir", stateDir, "--json"]);
    expect(repair.code).toBe(0);
    expect(
      repair.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).type),
    ).toContain("result");
    expect((await router.stats()).map((s) => s.name)).toEqual([]);
    expect((await cli(["host", "check", "--state-dir", stateDir])).code).toBe(0);
  });

  it("the router half of repair restarts HAProxy with the desired servers and undoes weight drift", async () => {
    const router = await Router.open(stateDir);
    await router.apply({ servers: [{ name: "v1", port: 9, weight: 100 }] });
    process.kill((await router.running())!.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const restarted = await repairRouter(stateDir);
    expect(restarted.actions).toContain("started HAProxy");
    expect((await router.stats()).map((s) => [s.name, s.userWeight])).toEqual([["v1", 256]]);

    await router.api.exec("set server models/v1 weight 3");
    const check = await cli(["host", "check", "--state-dir", stateDir]);
    expect(check.code).toBe(3);
    expect(check.stdout).toContain("✗ router state: v1 weight 3, want 256");
    const fixed = await repairRouter(stateDir);
    expect(fixed.actions).toEqual(["runtime API: set server models/v1 weight 256"]);
    expect((await router.stats())[0]?.userWeight).toBe(256);
  });

  it("re-running init with another edge port reloads HAProxy onto it", async () => {
    const newPort = await freePort();
    const init = await cli(["host", "init", "--state-dir", stateDir, "--edge-port", String(newPort)]);
    expect(init.code).toBe(0);
    const router = await Router.open(stateDir);
    expect(router.edgeUrl()).toBe(`http://127.0.0.1:${newPort}`);
    expect((await router.stats()).map((s) => s.name)).toEqual(["v1"]);
    expect((await fetch(`http://127.0.0.1:${newPort}/`)).status).toBe(503); // v1 (port 9) is down
  });

  it("init --pin-header turns pinning by header on, --no-pin off again (docs/pinning.md)", async () => {
    const on = await cli(["host", "init", "--state-dir", stateDir, "--pin-header", "X-Try"]);
    expect(on.code, on.stderr).toBe(0);
    const router = await Router.open(stateDir);
    expect(router.settings.pin).toEqual({ enabled: true, header: "x-try" });
    // a fresh connection each time: a pooled one could still reach the HAProxy replaced by the reload
    const ask = (version: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${router.edgeUrl()}/predict`, { method: "POST", agent: false }, (res) => {
          let body = "";
          res.on("data", (c) => {
            body += c;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.setHeader("x-try", version);
        req.end("{}");
      });
    const unknown = await ask("v9");
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toEqual({
      error: "version v9 does not run here (x-try)",
      running: ["v1"],
    });
    const down = await ask("v1"); // v1 (port 9) is down: HAProxy's own 503, never another version's answer
    expect(down.status).toBe(503);

    // `host check` verifies the pin map, live (`show map`) and on disk, against the router's servers
    const map = router.paths.pinMap;
    const pinLine = (stdout: string) => stdout.split("\n").find((l) => l.includes(" pin map: "));
    const good = await cli(["host", "check", "--state-dir", stateDir]);
    expect(pinLine(good.stdout)).toBe(
      "✓ pin map: 1 pinnable version(s): v1 (live and on disk, header x-try)",
    );
    // drift behind our back: v1 dropped, a rogue v9 and a second 404 list added live; the file edited
    await router.api.exec(`del map ${map} v1`);
    await router.api.exec(`add map ${map} v9 models`);
    await router.api.exec(`add map ${map} @running "v9"`);
    await writeFile(map, "# edited by hand\nv1 pin_shadow\n");
    const drift = await cli(["host", "check", "--state-dir", stateDir, "--json"]);
    expect(drift.code).toBe(3);
    const failed = (JSON.parse(drift.stdout) as CheckJson).checks.filter((c) => !c.ok);
    expect(failed).toEqual([
      {
        name: "pin map",
        ok: false,
        detail:
          'live map lacks v1; live map lists v9, not a server; live map 404 list is "v1" + "v9", want "v1"; pin.map on disk sends v1 to pin_shadow, want models; pin.map on disk 404 list missing, want "v1"',
        fix: `modelship host repair --state-dir ${stateDir}`,
      },
    ]);
    expect(pinLine((await cli(["host", "check", "--state-dir", stateDir])).stdout)).toMatch(
      /^✗ pin map: live map lacks v1; .*want "v1"$/,
    );
    expect((await ask("v9")).status).toBe(503); // the rogue entry routes: v9 is no server (HAProxy's 503)
    // the router half of `host repair` puts the live map and the file back, without a reload
    const pid = (await router.running())!.pid;
    const fixed = await repairRouter(stateDir);
    expect(fixed.actions).toEqual([
      `runtime API: del map ${map} v9`,
      `runtime API: del map ${map} @running`,
      `runtime API: add map ${map} v1 models`,
      `runtime API: add map ${map} @running "v1"`,
    ]);
    expect((await router.running())!.pid).toBe(pid);
    expect(pinLine((await cli(["host", "check", "--state-dir", stateDir])).stdout)).toMatch(/^✓ pin map: /);
    expect(await router.livePinMap()).toEqual([
      ["v1", "models"],
      ["@running", '"v1"'],
    ]);
    expect(JSON.parse((await ask("v9")).body).running).toEqual(["v1"]);
    const off = await cli(["host", "init", "--state-dir", stateDir, "--no-pin"]);
    expect(off.code, off.stderr).toBe(0);
    expect((await Router.open(stateDir)).settings.pin).toEqual({ enabled: false, header: "x-try" });
    expect((await ask("v9")).status).toBe(503); // ignored: the normal route (v1 is down)
    const bad = await cli(["host", "init", "--state-dir", stateDir, "--pin-header", "x-a if TRUE"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toMatch(/pin\.header: header name/);
  });

  it("rejects bad flags with exit 2 and one line", async () => {
    const r = await cli(["host", "init", "--state-dir", stateDir, "--edge-port", "99999"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("modelship: --edge-port must be a port number 1–65535, got '99999'");
  });
});

describe("systemd unit for real hosts", () => {
  it.skipIf(!existsSync("/usr/bin/systemd-analyze"))(
    "is a unit systemd accepts, running our config in master-worker mode",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "mstest-unit-"));
      try {
        const unit = renderUnit(RouterSettings.parse({ stateDir: "/var/lib/modelship" }));
        expect(unit).toContain("ExecStart=/usr/sbin/haproxy -Ws -f $CONFIG");
        expect(unit).toContain('Environment="CONFIG=/var/lib/modelship/haproxy/haproxy.cfg"');
        expect(unit).toContain("ExecReload=/bin/kill -USR2 $MAINPID");
        const file = join(dir, "modelship-haproxy.service");
        await writeFile(file, unit);
        const { stderr } = await exec("systemd-analyze", ["verify", file]);
        expect(stderr).not.toMatch(/unknown|invalid|error|failed|ignoring/i);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
