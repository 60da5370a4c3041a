import { describeError, isUserError } from "../src/util/errors.js";
import { flushLogs } from "./logger.js";
import { resolveSettings } from "./settings.js";
import { runServer } from "./supervisor.js";

/**
 * Container entry point (`node dist/serving/main.js`): configured only through env
 * (MODELSHIP_MODEL_DIR, PORT, MODELSHIP_WORKERS, … — see README "Serving").
 */
try {
  const code = await runServer(resolveSettings());
  flushLogs();
  process.exit(code);
} catch (err) {
  process.stderr.write(`modelship-serve: ${describeError(err)}\n`);
  process.exit(isUserError(err) ? err.exitCode : 1);
}
