import type { Command } from "commander";
import { resolveStateDir } from "../../ledger/ledger.js";
import { shadowDetail } from "../../rollout/deploy.js";
import { type HostStatus, hostStatus } from "../../rollout/status.js";
import { pc } from "../../util/colors.js";
import { textTable } from "../../util/progress.js";
import { safeText } from "../../util/text.js";

interface StatusFlags {
  json?: boolean;
  stateDir?: string;
  window?: string;
}

export function register(program: Command): void {
  program
    .command("status")
    .description(
      "Show what serves on this host: edge URL, versions, roles, weights, health, req/s, error rate, p95",
    )
    .option(
      "--state-dir <dir>",
      "state dir (default: $MODELSHIP_STATE_DIR, /var/lib/modelship as root, else ~/.modelship)",
    )
    .option("--window <ms>", "measure rates over this many ms (default 1000; 0 = no live rates)", "1000")
    .option("--json", "one JSON document")
    .action(async (flags: StatusFlags) => {
      const windowMs = Number(flags.window ?? 1000);
      const status = await hostStatus(
        resolveStateDir(flags.stateDir),
        Number.isFinite(windowMs) ? windowMs : 1000,
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      process.stdout.write(renderStatus(status));
    });
}

/** `modelship status` for humans: edge, operation, versions table, failure reasons and shadow verdicts. */
export function renderStatus(status: HostStatus): string {
  const out: string[] = [];
  out.push(
    `Edge: ${status.edge.url} ${status.edge.running ? pc.green("(HAProxy running)") : pc.red("(HAProxy not running — `modelship host repair`)")}`,
  );
  out.push(`State: ${status.stateDir}`);
  if (status.edge.pinHeader)
    out.push(
      `Pinning: on — \`curl -H '${status.edge.pinHeader}: <version>' ${status.edge.url}/predict …\` is answered by that version (docs/pinning.md)`,
    );
  if (status.operation) {
    const mark = status.operation.state === "running" ? pc.cyan("▶") : pc.yellow("!");
    out.push(`${mark} ${safeText(status.operation.explanation)}`);
  }
  const shown = status.versions.filter((v) => v.role !== "retired").slice(-8);
  if (shown.length === 0) out.push("Nothing deployed yet: `modelship deploy --image <ref>`.");
  else {
    out.push("");
    out.push(
      textTable(
        ["VERSION", "ROLE", "WEIGHT", "HEALTH", "REQ/S", "ERRORS", "P95", "IMAGE"],
        shown.map((v) => [
          // Versions and image refs can come from image labels / the CLI: printed cleaned.
          safeText(v.version),
          v.role,
          `${v.weight}%`,
          v.health,
          v.reqPerSec === null ? "-" : v.reqPerSec.toFixed(1),
          v.errorRate === null ? "-" : `${(v.errorRate * 100).toFixed(2)}%`,
          v.p95Ms === null ? "-" : `${v.p95Ms}ms`,
          safeText(v.image),
        ]),
      ),
    );
    const retired = status.versions.filter((v) => v.role === "retired").length;
    if (retired) out.push(pc.dim(`(${retired} retired version(s) hidden; --json lists all)`));
    for (const v of shown)
      if (v.failureReason) out.push(pc.dim(safeText(`${v.version} failed: ${v.failureReason}`)));
  }
  // The shadow verdict each version got at its deploy (kept in the ledger), pass or fail.
  for (const v of shown)
    if (v.shadow)
      out.push(
        safeText(
          `${v.version} shadow step (${v.shadow.endedAt.replace(/\.\d+Z$/, "Z")}): ${shadowDetail(v.shadow)}`,
        ),
      );
  return `${out.join("\n")}\n`;
}
