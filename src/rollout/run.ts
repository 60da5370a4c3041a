import { Engine } from "../engine/engine.js";
import { buildModelImage } from "../image/build.js";
import { currentUser, Ledger, type OperationHandle } from "../ledger/ledger.js";
import { syncTargetsIfMonitored } from "../monitoring/targets.js";
import { Router } from "../router/router.js";
import { ExitCode, UserError } from "../util/errors.js";
import type { Reporter } from "../util/progress.js";
import { candidateFromBundle, candidateFromImage } from "./candidate.js";
import { type DeployOutcome, runDeploy } from "./deploy.js";
import type { Candidate } from "./ports.js";
import { RepairRefused } from "./reconcile.js";
import { type RollbackOutcome, runRollback } from "./rollback.js";
import type { RolloutSettings } from "./settings.js";
import { realDeps } from "./wiring.js";

export interface DeployRequest {
  image?: string;
  model?: string;
  /** Repository for the image built from `model` (default modelship/<name>). */
  repository?: string;
  baseImage?: string;
  env?: Record<string, string>;
  stateDir: string;
  wait?: boolean;
  settings: RolloutSettings;
  reporter: Reporter;
}

/**
 * `modelship deploy` / the canary-deploy action: validate → build (bundle only) → canary rollout, all
 * under the host-wide operation lock.
 */
export async function deploy(req: DeployRequest): Promise<DeployOutcome> {
  if (Boolean(req.image) === Boolean(req.model))
    throw new UserError("give exactly one of --image <ref> or --model <bundle>", {
      exitCode: ExitCode.usage,
    });
  const { reporter, settings } = req;
  const engine = await Engine.connect();
  const router = await Router.open(req.stateDir);

  const candidate: Candidate & { bundleDir?: string } = await reporter.step(
    "Validating model",
    async () =>
      req.model ? candidateFromBundle(req.model, req.repository) : candidateFromImage(engine, req.image!),
    (c) =>
      `(${c.model?.name} ${c.version}, sha256 ${c.model?.sha256.slice(0, 12)}…${req.image ? `, image ${req.image}` : ""})`,
  );
  candidate.env = req.env;

  const ledger = new Ledger(req.stateDir);
  const op = await ledger.begin("deploy", {
    wait: req.wait,
    target: candidate.version,
    by: currentUser(),
    onChange: () => syncTargetsIfMonitored(req.stateDir),
  });
  try {
    const build = candidate.bundleDir
      ? async () => {
          const result = await buildModelImage({
            bundleDir: candidate.bundleDir!,
            image: req.repository,
            baseImage: req.baseImage,
            smoke: false,
            engine,
          });
          candidate.image = { ref: result.tags[0]!, digest: result.digest, builtHere: true };
          return `image ${result.tags[0]} built in ${(result.buildMs / 1000).toFixed(1)}s`;
        }
      : undefined;
    const outcome = await runDeploy({
      deps: realDeps(engine, router, req.stateDir, settings),
      op,
      candidate,
      settings,
      reporter,
      build,
    });
    await op.finish();
    return outcome;
  } catch (err) {
    await leaveOperation(op, err);
    throw err;
  }
}

export interface RollbackRequest {
  to?: string;
  reason: string;
  by?: string;
  stateDir: string;
  wait?: boolean;
  settings: RolloutSettings;
  reporter: Reporter;
}

export async function rollback(req: RollbackRequest): Promise<RollbackOutcome> {
  if (!req.reason.trim())
    throw new UserError("--reason is required: say why you roll back (it is recorded)", {
      exitCode: ExitCode.usage,
    });
  const engine = await Engine.connect();
  const router = await Router.open(req.stateDir);
  const ledger = new Ledger(req.stateDir);
  const by = req.by ?? currentUser();
  const op = await ledger.begin("rollback", {
    wait: req.wait,
    target: req.to,
    by,
    onChange: () => syncTargetsIfMonitored(req.stateDir),
  });
  try {
    const outcome = await runRollback({
      deps: realDeps(engine, router, req.stateDir, req.settings),
      op,
      settings: req.settings,
      to: req.to,
      reason: req.reason,
      by,
      reporter: req.reporter,
    });
    await op.finish();
    return outcome;
  } catch (err) {
    await leaveOperation(op, err);
    throw err;
  }
}

/**
 * After an error: a refusal that changed nothing clears the operation; anything else leaves it in the
 * ledger (so `status` explains it and the next operation repairs) and only releases the lock.
 */
async function leaveOperation(op: OperationHandle, err: unknown): Promise<void> {
  if (
    err instanceof RepairRefused ||
    (err instanceof UserError && (err.exitCode === ExitCode.usage || err.exitCode === ExitCode.busy))
  ) {
    await op.finish().catch(() => op.release());
  } else {
    await op.release();
  }
}

/**
 * A deploy or rollback during which clients of the edge saw failed requests did not succeed, whatever
 * else went right: the error every adapter (CLI, actions) raises for it, or null.
 */
export function edgeFailure(
  what: string,
  edge: { requests: number; failed: number; url: string },
): UserError | null {
  if (edge.failed === 0) return null;
  return new UserError(
    `${what}: ${edge.failed} of ${edge.requests} requests through the edge ${edge.url} failed meanwhile`,
    {
      exitCode: ExitCode.failed,
      hint: "see `modelship status` and the HAProxy log; the ledger records what changed",
    },
  );
}
