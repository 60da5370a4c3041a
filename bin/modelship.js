#!/usr/bin/env node
// Thin launcher: the CLI is compiled by `npm run build` (run automatically by `npm ci` via `prepare`).
process.env.MODELSHIP_CLI_ENTRY = "1";
import("../dist/src/cli/main.js").catch((err) => {
  if (err?.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/src/cli/main.js")) {
    console.error("modelship: not built yet — run `npm run build` (npm ci does it for you).");
    process.exit(2);
  }
  throw err;
});
