import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./support/data.js";

/**
 * The import graph of our TypeScript, read with the compiler's own import scanner: no cycles, and the
 * layer rule contracts ← domain ← adapters (← tooling) — an import may only point to its own layer or a
 * lower one. THE LAYERS ARE DECLARED HERE, ONCE; the README's architecture section describes them.
 */
const LAYERS = [
  /** Model card, IO signature, metrics, drift thresholds: zod schemas and types, importing nothing of ours. */
  { name: "contracts", paths: ["src/contracts/"] },
  /** Everything that does the work: plain functions and classes, side effects behind injected ports. */
  { name: "domain", paths: ["src/", "training/", "serving/"] },
  /** Sibling adapters over the domain: the CLI (and the demo next to it), the GitHub Actions. */
  { name: "adapters", paths: ["src/cli/", "src/action/", "actions/"] },
  /** Tests, benchmarks and scripts may use any layer. */
  { name: "tooling", paths: ["test/", "bench/", "scripts/"] },
] as const;

/** Adapters are siblings: none imports another (the CLI and the actions share the domain, not each other). */
const ADAPTERS = ["src/cli/", "src/action/", "actions/*/"];

const ROOTS = ["src", "training", "serving", "actions", "test", "bench", "scripts"];

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(repoRoot, dir))) {
      if (["node_modules", "dist", ".cache", "fixtures"].includes(name)) continue;
      const path = `${dir}/${name}`;
      if (statSync(join(repoRoot, path)).isDirectory()) walk(path);
      else if (/\.(ts|mts|mjs)$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
    }
  };
  for (const root of ROOTS) if (existsSync(join(repoRoot, root))) walk(root);
  return out;
}

/** file → the files of ours it imports (static, type-only, re-exports and dynamic imports alike). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    const info = ts.preProcessFile(readFileSync(join(repoRoot, file), "utf8"), true, true);
    const targets: string[] = [];
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith(".")) continue;
      const abs = resolve(repoRoot, dirname(file), fileName);
      const candidates = [abs.replace(/\.js$/, ".ts"), abs.replace(/\.js$/, ".mts"), abs, `${abs}.ts`];
      const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile());
      targets.push(relative(repoRoot, hit ?? abs));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The most specific layer whose path prefixes the file. */
function layerOf(file: string): number {
  let best = -1;
  let bestLength = -1;
  LAYERS.forEach((layer, i) => {
    for (const p of layer.paths)
      if (file.startsWith(p) && p.length > bestLength) {
        best = i;
        bestLength = p.length;
      }
  });
  return best;
}

function adapterOf(file: string): string | undefined {
  for (const a of ADAPTERS) {
    if (a.endsWith("*/")) {
      const base = a.slice(0, -2);
      if (file.startsWith(base)) return base + file.slice(base.length).split("/")[0];
    } else if (file.startsWith(a)) return a;
  }
  return undefined;
}

/** Module = the folder a concept lives in: src/<area>, training, serving, actions/<name>, … */
function moduleOf(file: string): string {
  const parts = file.split("/");
  if ((parts[0] === "src" || parts[0] === "actions") && parts.length > 2) return `${parts[0]}/${parts[1]}`;
  return parts[0]!;
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const onStack = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const graph = importGraph();
const edges = [...graph].flatMap(([from, tos]) => tos.map((to) => ({ from, to })));

describe("import graph", () => {
  it("reads the whole code base", () => {
    expect(graph.size).toBeGreaterThan(150);
    expect(graph.get("src/cli/commands/deploy.ts")).toContain("src/settings/rollout.ts");
    for (const { from, to } of edges) expect(existsSync(join(repoRoot, to)), `${from} → ${to}`).toBe(true);
  });

  it("has no cycle between files", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("has no cycle between modules (src/<area>, training, serving, actions/<name>)", () => {
    const modules = new Map<string, string[]>();
    for (const { from, to } of edges) {
      const a = moduleOf(from);
      const b = moduleOf(to);
      if (a === b) continue;
      modules.set(a, [...new Set([...(modules.get(a) ?? []), b])]);
    }
    expect(cycles(modules)).toEqual([]);
  });

  it("imports only point down the layers: contracts ← domain ← adapters ← tooling", () => {
    const upward = edges
      .filter(({ from, to }) => layerOf(to) > layerOf(from))
      .map(
        ({ from, to }) => `${from} (${LAYERS[layerOf(from)]!.name}) → ${to} (${LAYERS[layerOf(to)]!.name})`,
      );
    expect(upward).toEqual([]);
    for (const file of graph.keys()) expect(layerOf(file), file).toBeGreaterThanOrEqual(0);
  });

  it("contracts import nothing of ours", () => {
    const out = edges.filter(({ from, to }) => layerOf(from) === 0 && layerOf(to) !== 0);
    expect(out).toEqual([]);
  });

  it("adapters are siblings: no action imports src/cli, the CLI imports no action", () => {
    const across = edges
      .filter(({ from, to }) => {
        const a = adapterOf(from);
        const b = adapterOf(to);
        return a !== undefined && b !== undefined && a !== b && b !== "src/action/";
      })
      .map(({ from, to }) => `${from} → ${to}`);
    expect(across).toEqual([]);
  });

  it("one place per concept: a single ONNX protobuf schema (src/onnx/model-proto.ts), which training uses too", () => {
    const schemas = sourceFiles().filter((f) =>
      /^\s*message ModelProto\s*\{/m.test(readFileSync(join(repoRoot, f), "utf8")),
    );
    expect(schemas).toEqual(["src/onnx/model-proto.ts"]);
    expect(graph.get("training/onnx/builder.ts")).toContain("src/onnx/model-proto.ts");
  });

  it("the rule catches what it must (a domain file importing the CLI, a cycle)", () => {
    expect(layerOf("src/rollout/run.ts")).toBe(1);
    expect(layerOf("src/cli/demo/run.ts")).toBe(2);
    expect(layerOf("src/contracts/card.ts")).toBe(0);
    expect(layerOf("src/cli/main.ts") > layerOf("src/rollout/run.ts")).toBe(true);
    expect(
      cycles(
        new Map([
          ["a", ["b"]],
          ["b", ["a"]],
          ["c", ["a"]],
        ]),
      ),
    ).toEqual([["a", "b"]]);
  });
});
