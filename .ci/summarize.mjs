// Prints `tests: N passed, M failed` from vitest's JSON report (a missing report counts as a failure).
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? ".ci/out/vitest.json";
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (err) {
  console.log(`ci: no vitest report at ${file} (${err.message})`);
  console.log("tests: 0 passed, 1 failed");
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A suite that failed without any failed test (e.g. it did not import) counts as one failure.
const brokenSuites = (report.testResults ?? []).filter(
  (s) => s.status === "failed" && !(s.assertionResults ?? []).some((a) => a.status === "failed"),
).length;
const failed = (report.numFailedTests ?? 0) + brokenSuites;
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
