import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const root = process.cwd();
const roots = ["src", "training", "serving", "actions", "bench", "test", "scripts"];
const files = [];
function walk(d) {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (f === "node_modules" || f === "dist" || f === ".cache" || f === "fixtures") continue;
    const s = statSync(p);
    if (s.isDirectory()) walk(p);
    else if (/\.(ts|mts|mjs|cjs|js)$/.test(f)) files.push(relative(root, p));
  }
}
for (const r of roots) if (existsSync(r)) walk(r);
const edges = new Map();
for (const f of files) {
  const info = ts.preProcessFile(readFileSync(f, "utf8"), true, true);
  const out = [];
  for (const i of info.importedFiles) {
    const s = i.fileName;
    if (!s.startsWith(".")) continue;
    let t = relative(root, resolve(dirname(f), s));
    t = t.replace(/\.js$/, ".ts");
    if (!existsSync(t)) {
      const alt = relative(root, resolve(dirname(f), s));
      if (existsSync(alt)) t = alt;
      else if (existsSync(t.replace(/\.ts$/, ".mjs"))) t = t.replace(/\.ts$/, ".mjs");
    }
    out.push(t);
  }
  edges.set(f, out);
}
const mod = (f) => {
  const p = f.split("/");
  if (p[0] === "src") return p.length > 2 ? "src/" + p[1] : f;
  if (p[0] === "actions") return "actions/" + p[1];
  return p[0];
};
const medges = new Map();
for (const [f, ts_] of edges)
  for (const t of ts_) {
    const a = mod(f),
      b = mod(t);
    if (a === b) continue;
    if (!medges.has(a)) medges.set(a, new Map());
    const m = medges.get(a);
    if (!m.has(b)) m.set(b, []);
    m.get(b).push(`${f} -> ${t}`);
  }
const mode = process.argv[2];
if (mode === "mod") {
  for (const [a, m] of [...medges].sort()) console.log(a, "->", [...m.keys()].sort().join(" "));
}
if (mode === "edge") {
  const [a, b] = process.argv.slice(3);
  console.log((medges.get(a)?.get(b) ?? []).join("\n"));
}
if (mode === "scc") {
  // tarjan on modules
  let idx = 0;
  const st = [];
  const on = new Set();
  const I = new Map(),
    L = new Map();
  const out = [];
  const nodes = new Set([...medges.keys(), ...[...medges.values()].flatMap((m) => [...m.keys()])]);
  function sc(v) {
    I.set(v, idx);
    L.set(v, idx);
    idx++;
    st.push(v);
    on.add(v);
    for (const w of medges.get(v)?.keys() ?? []) {
      if (!I.has(w)) {
        sc(w);
        L.set(v, Math.min(L.get(v), L.get(w)));
      } else if (on.has(w)) L.set(v, Math.min(L.get(v), I.get(w)));
    }
    if (L.get(v) === I.get(v)) {
      const c = [];
      let w;
      do {
        w = st.pop();
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) out.push(c);
    }
  }
  for (const n of nodes) if (!I.has(n)) sc(n);
  for (const c of out) console.log("SCC:", c.join(" "));
}
if (mode === "filescc") {
  let idx = 0;
  const st = [];
  const on = new Set();
  const I = new Map(),
    L = new Map();
  function sc(v) {
    I.set(v, idx);
    L.set(v, idx);
    idx++;
    st.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!I.has(w)) {
        sc(w);
        L.set(v, Math.min(L.get(v), L.get(w)));
      } else if (on.has(w)) L.set(v, Math.min(L.get(v), I.get(w)));
    }
    if (L.get(v) === I.get(v)) {
      const c = [];
      let w;
      do {
        w = st.pop();
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) console.log("FILE SCC:", c.join(" "));
    }
  }
  for (const n of edges.keys()) if (!I.has(n)) sc(n);
}
