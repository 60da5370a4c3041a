import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BACKUP_FILE, LEDGER_FILE, Ledger, resolveStateDir } from "../src/ledger/ledger.js";
import { ledgerSchema } from "../src/ledger/schema.js";
import { ExitCode, UserError } from "../src/util/errors.js";

const ledgerModule = resolve("src/ledger/ledger.ts");

/** Runs a TypeScript snippet in a separate node process (a second "modelship" on the host). */
function child(dir: string, body: string): ChildProcess {
  const code = `import { Ledger } from ${JSON.stringify(ledgerModule)};\nconst ledger = new Ledger(${JSON.stringify(dir)});\n${body}`;
  return spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function exited(p: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = "";
  let err = "";
  p.stdout?.on("data", (d) => {
    out += d;
  });
  p.stderr?.on("data", (d) => {
    err += d;
  });
  return new Promise((res) => p.on("exit", (code) => res({ code, out, err })));
}

async function waitFor(pred: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("condition not reached");
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "mstest-ledger-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const entry = (version: string, role: "stable" | "canary" = "stable") => ({
  version,
  image: { ref: `ms/m:${version}`, digest: null },
  model: null,
  container: null,
  role,
  weight: role === "stable" ? 100 : 0,
  createdAt: new Date().toISOString(),
  updatedAt: new Date().toISOString(),
  analysis: [],
});

describe("deploy ledger", () => {
  it("state dir: flag beats env beats default", () => {
    const prev = process.env.MODELSHIP_STATE_DIR;
    process.env.MODELSHIP_STATE_DIR = "/tmp/from-env";
    try {
      expect(resolveStateDir("/tmp/from-flag")).toBe("/tmp/from-flag");
      expect(resolveStateDir()).toBe("/tmp/from-env");
      delete process.env.MODELSHIP_STATE_DIR;
      expect(resolveStateDir()).toMatch(/modelship$/);
    } finally {
      if (prev === undefined) delete process.env.MODELSHIP_STATE_DIR;
      else process.env.MODELSHIP_STATE_DIR = prev;
    }
  });

  it("a missing ledger reads as empty; updates persist and validate", async () => {
    const ledger = new Ledger(dir);
    expect((await ledger.read()).versions).toEqual([]);
    const op = await ledger.begin("deploy", { target: "v1" });
    expect((await ledger.read()).operation?.kind).toBe("deploy");
    await op.update((l) => {
      l.versions.push(entry("v1"));
    });
    await op.advance({ name: "canary", version: "v1", step: 1, weight: 25 });
    expect((await ledger.read()).operation).toMatchObject({
      step: "weight 25",
      phase: { name: "canary", version: "v1", step: 1, weight: 25 },
    });
    await op.finish();
    const after = await ledger.read();
    expect(after.operation).toBeNull();
    expect(after.versions.map((v) => v.version)).toEqual(["v1"]);
    expect(ledgerSchema.safeParse(JSON.parse(await readFile(join(dir, LEDGER_FILE), "utf8"))).success).toBe(
      true,
    );
  });

  it("a lock held across several mtime refreshes is still released cleanly", async () => {
    const ledger = new Ledger(dir);
    const op = await ledger.begin("deploy", { lockUpdateMs: 100 });
    await new Promise((r) => setTimeout(r, 450));
    await op.finish();
    expect(await readdir(dir)).not.toContain("operation.lock");
    const again = await ledger.begin("rollback");
    await again.finish();
  });

  it("refuses a second concurrent operation from another process with exit code 4", async () => {
    const ledger = new Ledger(dir);
    const op = await ledger.begin("deploy", { target: "v1" });
    const other = await exited(
      child(
        dir,
        `try { await ledger.begin("deploy", { target: "v2" }); console.log("GOT LOCK"); process.exit(0); }
         catch (e) { console.log(e.exitCode, e.message); process.exit(e.exitCode ?? 9); }`,
      ),
    );
    expect(other.code).toBe(ExitCode.busy);
    expect(other.out).toMatch(/another operation is in progress \(deploy of v1 by pid \d+/);
    await op.finish();
    expect((await ledger.read()).operation).toBeNull();
  });

  it("concurrent writers with --wait are serialised and both updates land", async () => {
    const body = (
      v: string,
    ) => `const op = await ledger.begin("deploy", { wait: true, pollMs: 50, target: "${v}" });
      const before = (await ledger.read()).versions.length;
      await new Promise((r) => setTimeout(r, 300));
      await op.update((l) => { l.versions.push({ version: "${v}", image: { ref: "x:${v}", digest: null }, model: null,
        container: null, role: "retired", weight: 0, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), analysis: [] }); });
      await op.finish(); console.log("before", before);`;
    const runs = await Promise.all(["a", "b", "c"].map((v) => exited(child(dir, body(v)))));
    for (const r of runs) expect(r.code, r.err).toBe(0);
    const seen = runs.map((r) => Number(/before (\d)/.exec(r.out)?.[1])).sort();
    // each writer saw the previous ones' results: no lost update
    expect(seen).toEqual([0, 1, 2]);
    const ledger = await new Ledger(dir).read();
    expect(ledger.versions.map((v) => v.version).sort()).toEqual(["a", "b", "c"]);
    expect(ledger.operation).toBeNull();
  });

  it("a lock left by a killed process is broken and the interrupted operation is recorded", async () => {
    const p = child(
      dir,
      `const op = await ledger.begin("deploy", { target: "v9" }); await op.advance({ name: "canary", version: "v9", step: 1, weight: 25 }); console.log("HELD"); setInterval(() => {}, 1000);`,
    );
    const done = exited(p);
    await waitFor(async () => (await new Ledger(dir).read()).operation?.phase?.name === "canary");
    p.kill("SIGKILL");
    await done;
    const ledger = new Ledger(dir);
    expect((await ledger.read()).operation?.target).toBe("v9");
    const op = await ledger.begin("repair");
    expect(op.interrupted?.target).toBe("v9");
    expect(op.interrupted?.step).toBe("weight 25");
    expect(op.interrupted?.phase).toEqual({ name: "canary", version: "v9", step: 1, weight: 25 });
    await op.finish();
    const after = await ledger.read();
    expect(after.history.some((h) => h.kind === "interrupted" && h.version === "v9")).toBe(true);
  });

  it("a writer killed mid-write leaves a readable ledger", async () => {
    const ledger = new Ledger(dir);
    const op = await ledger.begin("deploy");
    await op.update((l) => {
      l.versions.push(entry("v0"));
    });
    await op.release();
    const p = child(
      dir,
      `const op = await ledger.begin("deploy", { wait: true, pollMs: 20 }); console.log("HELD");
       for (let i = 0; ; i++) await op.update((l) => { l.history.push({ at: new Date().toISOString(), kind: "deploy", reason: "x".repeat(20000) + i }); });`,
    );
    const done = exited(p);
    await waitFor(async () => ((await new Ledger(dir).read()).history.length ?? 0) > 20);
    p.kill("SIGKILL");
    await done;
    const after = await ledger.read();
    expect(after.versions[0]?.version).toBe("v0");
    expect(after.history.length).toBeGreaterThan(20);
  });

  it("a corrupt ledger is a clear error; repair restores the backup and clears temp files", async () => {
    const ledger = new Ledger(dir);
    const op = await ledger.begin("deploy");
    await op.update((l) => {
      l.versions.push(entry("v1"));
    });
    await op.update((l) => {
      l.versions.push(entry("v2", "canary"));
    });
    await op.finish();
    await writeFile(join(dir, LEDGER_FILE), '{"schemaVersion": 1, "versions": [tru');
    await writeFile(join(dir, ".0123456789ab.tmp"), "half");
    const err = await ledger.read().catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(ExitCode.environment);
    expect(err.message).toMatch(/corrupt \(not JSON/);
    expect(err.hint).toMatch(/modelship host repair/);

    const { ledger: repaired, actions } = await ledger.repairFile();
    expect(actions.join("\n")).toMatch(/stray temp file/);
    expect(actions.join("\n")).toMatch(/restored the ledger from/);
    expect(repaired.versions.length).toBeGreaterThan(0);
    expect((await ledger.read()).versions.length).toBe(repaired.versions.length);
    const files = await readdir(dir);
    expect(files.some((f) => f.startsWith(`${LEDGER_FILE}.corrupt-`))).toBe(true);
    expect(files).toContain(BACKUP_FILE);
    expect(files).not.toContain(".0123456789ab.tmp");
  });

  it("a schema-invalid ledger names the bad field", async () => {
    await writeFile(
      join(dir, LEDGER_FILE),
      JSON.stringify({
        schemaVersion: 1,
        updatedAt: new Date().toISOString(),
        versions: [{ version: "x" }],
        operation: null,
        history: [],
      }),
    );
    const err = await new Ledger(dir).read().catch((e) => e);
    expect(err.message).toMatch(/corrupt \(versions\.0\.image/);
  });
});
