/**
 * bench:shadow — what the shadow mirror costs users, in one run on this machine (real HAProxy running
 * our Lua, real model servers): the same steady load through the edge, alternating rounds without and
 * with the mirror to an equal candidate (ABAB…, so drift in the machine's load hits both sides), then
 * stable's p50/p99 with vs without (the mirror is switched on/off between measured windows) (goal: p99 ≤ 1.2× the no-mirror run) and the shadow verdict.
 * The mirror runs as a deploy runs it: the target's defaults (rate cap ShadowTarget.ratePerSec) unless
 * --rate overrides the cap (--rate 150 at --rps 150 copies every request). Prints a table, the load
 * average before and after (other work on the machine shows there) and a JSON line.
 * Usage: npm run bench:shadow [-- --rounds 3 --seconds 5 --rps 150 --target equal|dead --rate N]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type LoadReport, startLoad } from "../src/load/generator.js";
import { freePort } from "../src/rollout/wiring.js";
import { Router } from "../src/router/index.js";
import { ShadowTarget } from "../src/router/schema.js";
import { fetchPairs } from "../src/shadow/collect.js";
import { compareShadow } from "../src/shadow/compare.js";
import { textTable } from "../src/util/progress.js";
import { trainedBundle } from "../test/support/bundle.js";
import { tweetTexts } from "../test/support/data.js";
import { killDaemonsOf } from "../test/support/leftovers.js";
import { startServer } from "../test/support/serving.js";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "5" },
    rps: { type: "string", default: "150" },
    /** "equal" (a second server of the same bundle) or "dead" (a closed port: isolates the Lua's own cost). */
    target: { type: "string", default: "equal" },
    /** Mirror rate cap per second (default: the product's, as deploy's shadow step uses it). */
    rate: { type: "string" },
  },
});
const rate = args.rate ? Number(args.rate) : ShadowTarget.parse({ name: "x", port: 1 }).ratePerSec;
const load1 = loadavg()
  .map((l) => l.toFixed(2))
  .join(" ");
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);
const rps = Number(args.rps);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const bundle = await trainedBundle();
const stateDir = await mkdtemp(join(tmpdir(), "msbench-shadow-"));
const router = new Router({
  stateDir,
  edge: { bind: "127.0.0.1", port: await freePort() },
  metrics: { bind: "127.0.0.1", port: await freePort() },
});
const [stable, candidate] = await Promise.all([startServer(bundle), startServer(bundle)]);
try {
  await router.apply({ servers: [{ name: "stable", port: stable.port, weight: 100 }] });
  const off: LoadReport[] = [];
  const on: LoadReport[] = [];
  let verdict = "";
  for (let i = 0; i < rounds; i++) {
    for (const mirror of [false, true]) {
      // The mirror is switched (a seamless reload) outside the measured window: steady state only.
      const port = args.target === "dead" ? await freePort() : candidate.port;
      if (mirror) await router.setShadow({ name: "candidate", port, ratePerSec: rate });
      const load = await startLoad({ url: router.edgeUrl(), texts: tweetTexts(), rps, connections: 8 });
      try {
        await sleep(seconds * 1000);
        (mirror ? on : off).push(await load.stop());
      } finally {
        load.kill();
      }
      if (mirror) {
        const batch = await fetchPairs(router.shadowPairsUrl(0));
        verdict = compareShadow(batch.pairs, {}, ["negative", "positive"]).summary;
        await router.setShadow(null);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const fig = (rs: LoadReport[]) => ({
    p50: median(rs.map((r) => r.p50Ms)),
    p99: median(rs.map((r) => r.p99Ms)),
    failed: rs.reduce((a, r) => a + r.failed, 0),
    requests: rs.reduce((a, r) => a + r.completed, 0),
  });
  const a = fig(off);
  const b = fig(on);
  const ratio = b.p99 / a.p99;
  // Paired: each round's with-mirror window right after its own without window, so a burst of other
  // work on the machine lands in one pair, not in the whole comparison.
  const paired = median(on.map((r, i) => r.p99Ms / off[i]!.p99Ms));
  console.log(
    textTable(
      ["", "requests", "failed", "p50 ms", "p99 ms"],
      [
        ["without mirror", String(a.requests), String(a.failed), a.p50.toFixed(1), a.p99.toFixed(1)],
        ["with mirror", String(b.requests), String(b.failed), b.p50.toFixed(1), b.p99.toFixed(1)],
      ],
    ),
  );
  const load2 = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  console.log(
    `p99 with/without mirror: ${ratio.toFixed(2)}× (goal ≤ 1.2×; median of the ${rounds} paired rounds ${paired.toFixed(2)}×) at ${rps} req/s, mirror cap ${rate}/s; ${verdict}`,
  );
  console.log(`load average before ${load1}, after ${load2} (2 cores)`);
  console.log(
    JSON.stringify({
      bench: "shadow",
      target: args.target,
      rounds,
      seconds,
      rps,
      rate,
      loadavg: { before: load1, after: load2 },
      without: a,
      with: b,
      p99Ratio: ratio,
      pairedP99Ratio: paired,
      perRound: on.map((r, i) => ({ without: off[i]!.p99Ms, with: r.p99Ms })),
      verdict,
    }),
  );
  process.exitCode = ratio <= 1.2 && a.failed + b.failed === 0 ? 0 : 1;
} finally {
  const live = await router.running();
  if (live) process.kill(live.pid, "SIGKILL");
  await killDaemonsOf(stateDir);
  await Promise.all([stable.stop(), candidate.stop()]);
  await rm(stateDir, { recursive: true, force: true });
}
