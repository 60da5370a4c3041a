import type { LoadHandle } from "../../src/load/generator.js";

/**
 * Resolves once the load generator has had `answers` answers: traffic flows through the edge before
 * the change under test starts (in place of a fixed wait, which a loaded host may not fill).
 */
export async function loadFlowing(load: LoadHandle, answers = 50, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { completed } = await load.snapshot();
    if (completed >= answers) return;
    if (Date.now() > until)
      throw new Error(`load: ${completed} of ${answers} answers within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
