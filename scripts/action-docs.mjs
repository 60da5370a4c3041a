#!/usr/bin/env node
// Regenerates the inputs/outputs tables in the docs (docs/*.md, and README.md should it hold any) from
// each actions/<name>/action.yml, between `<!-- action-docs:<name> -->` and `<!-- /action-docs:<name> -->`.
// `--check` exits 1 when stale.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Every markdown file that may carry action-docs markers, relative to the repository root. */
export function docFiles() {
  const docs = readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`);
  return ["README.md", ...docs];
}

/** Markdown for one action, or a placeholder when its action.yml does not exist yet. */
export function actionDocs(name) {
  const path = join(root, "actions", name, "action.yml");
  if (!existsSync(path)) return `_actions/${name}/action.yml not written yet._`;
  const meta = parse(readFileSync(path, "utf8"));
  const cell = (s) =>
    String(s ?? "")
      .replace(/\s+/g, " ")
      .trim()
      .replace(/\|/g, "\\|");
  const lines = [`\`uses: ./actions/${name}\` — ${cell(meta.description)}`, ""];
  lines.push("| input | required | default | description |", "|---|:-:|---|---|");
  for (const [key, spec] of Object.entries(meta.inputs ?? {})) {
    const def = spec?.default === undefined || spec.default === "" ? "" : `\`${cell(spec.default)}\``;
    lines.push(`| \`${key}\` | ${spec?.required ? "yes" : ""} | ${def} | ${cell(spec?.description)} |`);
  }
  lines.push("", "| output | description |", "|---|---|");
  for (const [key, spec] of Object.entries(meta.outputs ?? {}))
    lines.push(`| \`${key}\` | ${cell(spec?.description)} |`);
  return lines.join("\n");
}

/** A markdown text with every marked block regenerated. */
export function renderReadme(text) {
  return text.replace(
    /(<!-- action-docs:([\w-]+) -->)[\s\S]*?(<!-- \/action-docs:\2 -->)/g,
    (_, open, name, close) => `${open}\n${actionDocs(name)}\n${close}`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let stale = false;
  for (const file of docFiles()) {
    const path = join(root, file);
    const text = readFileSync(path, "utf8");
    const next = renderReadme(text);
    if (next === text) continue;
    if (process.argv.includes("--check")) {
      console.error(`action-docs: ${file} action tables are stale — run \`npm run docs:actions\``);
      stale = true;
    } else {
      writeFileSync(path, next);
      console.log(`action-docs: ${file} updated`);
    }
  }
  if (stale) process.exit(1);
}
