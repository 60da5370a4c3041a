import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Router, RouterDesired, RouterSettings } from "../src/router/index.js";
import { isUserError } from "../src/util/errors.js";
import { createLocalUser, isRoot, type LocalUser } from "./support/local-user.js";

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * The attacker's side of issue 10 item 1: as another local user, pre-create the directories the
 * router used to check configs in (`/tmp/modelship-haproxy-check-<pid>-<ms>`) for the next seconds,
 * and swap a config that loads their Lua into any of them the moment root writes one. The Lua writes
 * `lua ran as: <id>` to a proof file.
 */
const RACER = `
const fs = require("node:fs");
const path = require("node:path");
const [pid, from, to, evilCfg] = process.argv.slice(2);
const dirs = [];
for (let t = Number(from); t <= Number(to); t++) {
  const d = path.join("/tmp", "modelship-haproxy-check-" + pid + "-" + t);
  try { fs.mkdirSync(d, { mode: 0o777 }); fs.chmodSync(d, 0o777); dirs.push(d); } catch {}
}
const swap = (d) => { try { fs.copyFileSync(evilCfg, d + "/.swap"); fs.renameSync(d + "/.swap", d + "/haproxy.cfg"); } catch {} };
for (const d of dirs) { try { fs.watch(d, () => swap(d)); } catch {} }
process.stdout.write("ready " + dirs.length + "\\n");
setTimeout(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); process.exit(0); }, Number(to) - Date.now() + 2000);
`;

describe.runIf(isRoot)("router as root vs. a second local user (issue 10)", () => {
  let evil: LocalUser;
  let work: string;
  let router: Router;

  beforeAll(async () => {
    evil = await createLocalUser();
    work = await mkdtemp(join(tmpdir(), "mstest-routersec-"));
    await chmod(work, 0o755);
    router = new Router({
      stateDir: join(work, "state"),
      edge: { bind: "127.0.0.1", port: await freePort() },
      metrics: { bind: "127.0.0.1", port: await freePort() },
    });
  });

  afterAll(async () => {
    await router?.stop().catch(() => {});
    // the attacker's planted directories, even when its racer was killed before cleaning up
    if (evil)
      for (const name of await readdir("/tmp"))
        if (name.startsWith("modelship-haproxy-check-")) {
          const s = await stat(join("/tmp", name)).catch(() => undefined);
          if (s?.uid === evil.uid) await rm(join("/tmp", name), { recursive: true, force: true });
        }
    await evil?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("checks configs in a private dir: pre-created candidate dirs are never used, no foreign Lua runs, no ENOTEMPTY", async () => {
    const attacker = join(work, "attacker");
    await mkdir(attacker, { mode: 0o755 });
    await chown(attacker, evil.uid, evil.gid);
    const proof = join(attacker, "proof");
    await writeFile(join(attacker, "racer.cjs"), RACER);
    await writeFile(
      join(attacker, "evil.lua"),
      `local s = io.open("/proc/self/status"):read("*a") local f = io.open("${proof}", "a") f:write("lua ran as: uid=" .. s:match("Uid:%s+(%d+)") .. "\\n") f:close()\n`,
    );
    await writeFile(join(attacker, "evil.cfg"), `global\n    lua-load ${join(attacker, "evil.lua")}\n`);
    const from = Date.now() + 1500;
    const to = from + 2500;
    const racer = evil.run(process.execPath, [
      join(attacker, "racer.cjs"),
      String(process.pid),
      String(from),
      String(to),
      join(attacker, "evil.cfg"),
    ]);
    // wait until the attacker's directories exist
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const planted = (await readdir("/tmp")).filter((n) =>
        n.startsWith(`modelship-haproxy-check-${process.pid}-`),
      );
      if (planted.length > 100) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    while (Date.now() < from) await new Promise((r) => setTimeout(r, 10));
    const config = await router.render(RouterDesired.parse({ servers: [] }));
    let checks = 0;
    const failures: string[] = [];
    while (Date.now() < to) {
      try {
        await router.validate(config);
      } catch (err) {
        failures.push((err as Error).message);
      }
      checks++;
    }
    await racer;
    const ran = await readFile(proof, "utf8").catch(() => "");
    expect(ran, "the attacker's Lua ran").toBe("");
    expect(failures, "validate failed (ENOTEMPTY / swapped config)").toEqual([]);
    expect(checks).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it("HAProxy started as root drops to the haproxy user; runtime API, exporter and reload still work", async () => {
    const { pid } = await router.ensureRunning();
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    const passwd = await readFile("/etc/passwd", "utf8");
    const haproxyUid = Number(/^haproxy:[^:]*:(\d+):/m.exec(passwd)?.[1]);
    expect(uid).toBe(haproxyUid);
    expect(uid).not.toBe(0);
    expect(await router.readDesired()).toEqual({ servers: [] });
    expect(await router.answers()).toBe(true);
    const metrics = await fetch(router.metricsUrl());
    expect(await metrics.text()).toContain("haproxy_process_");
    const config = await readFile(router.paths.config, "utf8");
    expect(config).toMatch(/^\s+user haproxy\n\s+group haproxy$/m);
    const socket = await stat(router.paths.socket);
    expect(socket.uid).toBe(0); // created before the privilege drop
    const reloaded = await router.reload();
    expect(reloaded.pid).not.toBe(pid);
    const after = await readFile(`/proc/${reloaded.pid}/status`, "utf8");
    expect(Number(/^Uid:\s+(\d+)/m.exec(after)?.[1])).toBe(haproxyUid);
    expect(await router.answers()).toBe(true);
  });

  it("refuses a state dir another user owns or could write, and never runs a binary named in router.json", async () => {
    const proof = join(work, "bin-ran");
    const fakeBin = join(work, "fake-haproxy");
    await writeFile(fakeBin, `#!/bin/sh\necho "ran as $(id -u)" > ${proof}\n`, { mode: 0o755 });
    // 1. owned by the other user
    const theirs = join(work, "theirs");
    await mkdir(theirs, { mode: 0o750 });
    await chown(theirs, evil.uid, evil.gid);
    await writeFile(join(theirs, "router.json"), JSON.stringify({ haproxyBin: fakeBin }));
    const e1 = await Router.open(theirs).catch((e) => e);
    expect(isUserError(e1)).toBe(true);
    expect(e1.message).toMatch(/^refusing to use state dir .*theirs: .* is owned by uid \d+/);
    // 2. ours, but writable by others
    const open = join(work, "open");
    await mkdir(open);
    await chmod(open, 0o777);
    const e2 = await Router.open(open).catch((e) => e);
    expect(e2.message).toMatch(/writable by others \(mode 777\)/);
    // 3. safe dir, but router.json names an executable: refused, never run
    const safe = join(work, "safe");
    await mkdir(safe, { mode: 0o750 });
    await writeFile(join(safe, "router.json"), JSON.stringify({ haproxyBin: fakeBin }));
    const e3 = await Router.open(safe).catch((e) => e);
    expect(e3.message).toMatch(/sets haproxyBin=.*never from a path in the state dir/);
    expect(await readFile(proof, "utf8").catch(() => "")).toBe("");
  });
});

describe("router settings hold every value that reaches haproxy.cfg to a strict pattern (issue 10 item 3)", () => {
  const injected = "127.0.0.1:19381\n    lua-load /tmp/evil.lua\n bind 127.0.0.1";
  it.each([
    ["edge.bind", { edge: { bind: injected } }],
    ["metrics.bind", { metrics: { bind: "127.0.0.1 ssl crt /etc/shadow" } }],
    ["health.path", { health: { path: "/ready\n    lua-load /tmp/evil.lua" } }],
    ["stateDir", { stateDir: "/tmp/x\n    lua-load /tmp/evil.lua" }],
    ["systemdUnit", { systemdUnit: "../../../etc/cron.d/evil.service" }],
    ["socketGroup", { socketGroup: "root level admin\n" }],
    ["runAs", { runAs: "root\n    lua-load /x" }],
    ["unknown key", { luaLoad: "/tmp/evil.lua" }],
  ])("%s", (_what, extra) => {
    const r = RouterSettings.safeParse({ stateDir: "/var/lib/modelship", ...extra });
    expect(r.success).toBe(false);
  });

  it("server specs: names and addresses cannot carry keywords", () => {
    for (const server of [
      { name: "v1 check", port: 1, weight: 1 },
      { name: "v1", address: "127.0.0.1 backup", port: 1, weight: 1 },
      { name: "v1", address: "127.0.0.1\nglobal", port: 1, weight: 1 },
      { name: "v1", port: 1, weight: 1, extra: "x" },
    ])
      expect(RouterDesired.safeParse({ servers: [server] }).success, JSON.stringify(server)).toBe(false);
  });

  it("a tampered router.json is refused when read back, naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mstest-routersec-"));
    try {
      await writeFile(join(dir, "router.json"), JSON.stringify({ edge: { bind: injected, port: 19381 } }));
      const err = await Router.open(dir).catch((e) => e);
      expect(isUserError(err)).toBe(true);
      expect(err.message).toMatch(/^invalid router settings in .*router\.json: edge\.bind: bind address/);
      expect(err.message).not.toContain("\n");
      await writeFile(
        join(dir, "router-desired.json"),
        JSON.stringify({ servers: [{ name: "v1", address: "1.2.3.4\nglobal", port: 1, weight: 100 }] }),
      );
      await writeFile(join(dir, "router.json"), "{}");
      const desired = await (await Router.open(dir)).readDesired().catch((e) => e);
      expect(desired.message).toMatch(/^corrupt router state .*router-desired\.json: servers\.0\.address/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.runIf(isRoot)("errors HAProxy answers at the edge are JSON (issue 10 item 11)", () => {
  let work: string;
  let router: Router;
  const servers: { close(): void }[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "mstest-edgeerr-"));
    router = new Router({
      stateDir: join(work, "state"),
      edge: { bind: "127.0.0.1", port: await freePort() },
      metrics: { bind: "127.0.0.1", port: await freePort() },
      health: { interMs: 200, fastInterMs: 100, downInterMs: 200 },
      timeouts: { httpRequestMs: 400, serverMs: 400, connectMs: 300, hardStopAfterMs: 2_000 },
      retries: 0,
    });
    await router.ensureRunning();
  });

  afterAll(async () => {
    for (const s of servers) s.close();
    await router?.stop().catch(() => {});
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** One raw HTTP exchange on a fresh connection; resolves with what the edge sent back. */
  function raw(send: string, waitMs = 3_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(router.settings.edge.port, "127.0.0.1", () => s.write(send));
      let out = "";
      s.on("data", (d) => {
        out += d.toString();
      });
      s.on("close", () => resolve(out));
      s.on("error", reject);
      s.setTimeout(waitMs, () => s.destroy());
    });
  }

  const expectJson = (answer: string, status: number) => {
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.[01] ${status} `));
    expect(answer.toLowerCase()).toContain("content-type: application/json");
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error).toMatch(/^[a-z]/);
    return body.error as string;
  };

  it("503 when no model server is behind the edge", async () => {
    expect(
      expectJson(
        await raw("POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"),
        503,
      ),
    ).toMatch(/no model server/);
  });

  // HAProxy 2.6 answers 400/408 on a connection whose first request never parsed from the H1 mux,
  // before any proxy setting applies: errorfile/http-error cannot change them (haproxy/haproxy#3032,
  // fixed in 3.2). The config carries JSON bodies for both, so they take effect on an upgrade; this
  // test pins the 2.6 behaviour documented in docs/security.md and fails once it changes.
  it("400 / 408 before any request parsed: HAProxy 2.6 keeps its built-in page (documented limitation)", async () => {
    const config = await readFile(router.paths.config, "utf8");
    expect(config).toMatch(/http-error status 400 content-type application\/json string '\{"error":/);
    expect(config).toMatch(/http-error status 408 content-type application\/json string '\{"error":/);
    const bad = await raw("GARBAGE \x01\x02 NOT-HTTP\r\n\r\n");
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    const slow = await raw("POST /predict HTTP/1.1\r\nHost: x\r\n");
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(`${bad}${slow}`.toLowerCase()).toContain("content-type: text/html");
  });

  it("502 when the server answers garbage, 504 when it does not answer in time", async () => {
    const garbage = createNetServer((s) => {
      s.on("error", () => {});
      s.on("data", (d) => {
        if (d.toString().startsWith("GET /ready")) s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        else s.end("NOT HTTP AT ALL\r\n\r\n");
      });
    });
    const silent = createNetServer((s) => {
      s.on("error", () => {});
      s.on("data", (d) => {
        if (d.toString().startsWith("GET /ready")) s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        // else: never answer
      });
    });
    servers.push(garbage, silent);
    const listen = (srv: ReturnType<typeof createNetServer>) =>
      new Promise<number>((r) =>
        srv.listen(0, "127.0.0.1", () => r((srv.address() as { port: number }).port)),
      );
    const gPort = await listen(garbage);
    const sPort = await listen(silent);
    await router.apply({ servers: [{ name: "garbage", port: gPort, weight: 100 }] });
    expect((await router.waitHealthy("garbage", 5_000)).healthy).toBe(true);
    expectJson(await raw("GET /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 502);
    await router.apply({ servers: [{ name: "silent", port: sPort, weight: 100 }] });
    expect((await router.waitHealthy("silent", 5_000)).healthy).toBe(true);
    expectJson(await raw("GET /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 504);
  });

  it("what a client library sees: a JSON error it can parse", async () => {
    await router.apply({ servers: [] });
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(`${router.edgeUrl()}/predict`, { method: "POST" }, (res) => {
        let t = "";
        res.on("data", (d) => {
          t += d;
        });
        res.on("end", () => resolve(`${res.statusCode} ${res.headers["content-type"]} ${t}`));
      });
      req.on("error", reject);
      req.end("{}");
    });
    expect(body).toMatch(/^503 application\/json \{"error":"no model server is available; retry shortly"\}$/);
  });
});
