import { connectGitHub, currentRunUrl, type GitHub, gitHubError } from "./client.js";

/** What every modelship Deployment carries, so the deployments page says which model is live. */
export interface ModelDeploymentPayload {
  modelVersion: string;
  modelSha256?: string;
  image?: string;
  imageDigest?: string;
  /** "deploy" or "rollback". */
  kind: "deploy" | "rollback";
  reason?: string;
}

export type DeploymentState =
  | "in_progress"
  | "success"
  | "failure"
  | "error"
  | "inactive"
  | "queued"
  | "pending";

export interface DeploymentRef {
  id: number;
  environment: string;
}

export async function createDeployment(
  gh: GitHub,
  options: { ref: string; environment: string; payload: ModelDeploymentPayload; description?: string },
): Promise<DeploymentRef> {
  try {
    const res = await gh.octokit.rest.repos.createDeployment({
      owner: gh.owner,
      repo: gh.repo,
      ref: options.ref,
      environment: options.environment,
      task: options.payload.kind === "rollback" ? "deploy:rollback" : "deploy",
      payload: { ...options.payload },
      description: (options.description ?? `${options.payload.kind} ${options.payload.modelVersion}`).slice(
        0,
        140,
      ),
      // The model gate and our own checks decide; don't wait for commit statuses or try to merge.
      auto_merge: false,
      required_contexts: [],
      production_environment: options.environment === "production",
      transient_environment: false,
    });
    // 202 = GitHub wanted to merge the default branch first; with auto_merge off this means "not created".
    if (res.status !== 201 || !("id" in res.data)) {
      throw new Error(("message" in res.data && res.data.message) || `unexpected status ${res.status}`);
    }
    return { id: res.data.id, environment: options.environment };
  } catch (err) {
    throw gitHubError(
      `creating a ${options.environment} deployment for ${options.payload.modelVersion}`,
      err,
    );
  }
}

export async function setDeploymentStatus(
  gh: GitHub,
  deployment: DeploymentRef,
  state: DeploymentState,
  options: { logUrl?: string; environmentUrl?: string; description?: string } = {},
): Promise<void> {
  try {
    await gh.octokit.rest.repos.createDeploymentStatus({
      owner: gh.owner,
      repo: gh.repo,
      deployment_id: deployment.id,
      state,
      environment: deployment.environment,
      // Older deployments of this environment go inactive when this one succeeds.
      auto_inactive: true,
      ...(options.logUrl ? { log_url: options.logUrl } : {}),
      ...(options.environmentUrl ? { environment_url: options.environmentUrl } : {}),
      ...(options.description ? { description: options.description.slice(0, 140) } : {}),
    });
  } catch (err) {
    throw gitHubError(`setting deployment ${deployment.id} to ${state}`, err);
  }
}

/** Posts an `in_progress` status with this description while the rollout runs (best effort, in order). */
export type DeploymentProgress = (description: string) => void;

/**
 * Wraps a rollout in a GitHub Deployment: created, `in_progress`, then `success` or `failure` with a
 * link to the run. The rollout's own error is rethrown unchanged; a failure to record the final status
 * is reported through `onWarning` rather than masking the rollout's result.
 */
export async function trackDeployment<T>(
  gh: GitHub,
  options: {
    ref: string;
    environment: string;
    payload: ModelDeploymentPayload;
    logUrl?: string;
    environmentUrl?: string;
    onWarning?: (message: string) => void;
    /**
     * The final status's description, asked once the rollout ended (e.g. the outcome with its shadow
     * verdict); undefined = "<version> is live" on success, the error's message on failure.
     */
    describe?: () => string | undefined;
  },
  rollout: (deployment: DeploymentRef, progress: DeploymentProgress) => Promise<T>,
): Promise<T> {
  const deployment = await createDeployment(gh, options);
  const links = {
    ...(options.logUrl ? { logUrl: options.logUrl } : {}),
    ...(options.environmentUrl ? { environmentUrl: options.environmentUrl } : {}),
  };
  await setDeploymentStatus(gh, deployment, "in_progress", {
    ...links,
    description: `${options.payload.kind} ${options.payload.modelVersion} started`,
  });
  // Progress notes go out in order and are awaited before the final status, so a late `in_progress`
  // can never land after (and so replace) `success` or `failure`.
  let notes: Promise<void> = Promise.resolve();
  const progress: DeploymentProgress = (description) => {
    notes = notes.then(() =>
      setDeploymentStatus(gh, deployment, "in_progress", { ...links, description }).catch((e: Error) =>
        options.onWarning?.(e.message),
      ),
    );
  };
  let result: T;
  try {
    result = await rollout(deployment, progress);
  } catch (err) {
    await notes;
    await setDeploymentStatus(gh, deployment, "failure", {
      ...links,
      description: options.describe?.() ?? (err as Error)?.message ?? "rollout failed",
    }).catch((e: Error) => options.onWarning?.(e.message));
    throw err;
  }
  await notes;
  await setDeploymentStatus(gh, deployment, "success", {
    ...links,
    description: options.describe?.() ?? `${options.payload.modelVersion} is live`,
  }).catch((e: Error) => options.onWarning?.(e.message));
  return result;
}

/**
 * For actions (canary-deploy, rollback): records the rollout as a GitHub Deployment of the current
 * commit with a link to this run — or just runs it when no token / repository is available (local
 * runs, CLI), so callers need no branching.
 */
export async function withRunDeployment<T>(
  options: {
    token: string | undefined;
    environment: string;
    payload: ModelDeploymentPayload;
    environmentUrl?: string;
    onWarning?: (message: string) => void;
    /** See trackDeployment. */
    describe?: () => string | undefined;
    env?: NodeJS.ProcessEnv;
  },
  rollout: (deployment: DeploymentRef | null, progress: DeploymentProgress) => Promise<T>,
): Promise<T> {
  const env = options.env ?? process.env;
  if (!options.token || !env.GITHUB_REPOSITORY) return rollout(null, () => {});
  const gh = connectGitHub({
    token: options.token,
    repository: env.GITHUB_REPOSITORY,
    ...(env.GITHUB_API_URL ? { apiUrl: env.GITHUB_API_URL } : {}),
  });
  const logUrl = currentRunUrl(env);
  return trackDeployment(
    gh,
    {
      ref: env.GITHUB_SHA ?? env.GITHUB_REF ?? "HEAD",
      environment: options.environment,
      payload: options.payload,
      ...(logUrl ? { logUrl } : {}),
      ...(options.environmentUrl ? { environmentUrl: options.environmentUrl } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
      ...(options.describe ? { describe: options.describe } : {}),
    },
    rollout,
  );
}
