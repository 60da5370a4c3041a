import { getOctokit } from "@actions/github";
import { ExitCode, UserError } from "../util/errors.js";

/**
 * The one place modelship talks to the GitHub REST API. Everything goes through @actions/github's
 * Octokit; the base URL honours `GITHUB_API_URL` (GitHub Enterprise, and the local recorder in tests).
 */
export type Octokit = ReturnType<typeof getOctokit>;

export interface Repo {
  owner: string;
  repo: string;
}

export interface GitHub extends Repo {
  octokit: Octokit;
  apiUrl: string;
}

export function connectGitHub(options: { token: string; repository?: string; apiUrl?: string }): GitHub {
  if (!options.token) {
    throw new UserError("no GitHub token", {
      hint: "pass the github-token input (the workflow's github.token) or set GITHUB_TOKEN",
    });
  }
  const repo = parseRepository(options.repository ?? process.env.GITHUB_REPOSITORY);
  const apiUrl = (options.apiUrl ?? process.env.GITHUB_API_URL ?? "https://api.github.com").replace(
    /\/$/,
    "",
  );
  // No retries/throttling plugins: a failed call must surface at once with GitHub's message.
  const octokit = getOctokit(options.token, { baseUrl: apiUrl, userAgent: "modelship" });
  return { ...repo, octokit, apiUrl };
}

export function parseRepository(value: string | undefined): Repo {
  const match = /^([\w.-]+)\/([\w.-]+)$/.exec(value ?? "");
  if (!match) {
    throw new UserError(`GITHUB_REPOSITORY must look like owner/repo (got '${value ?? ""}')`, {
      exitCode: ExitCode.environment,
    });
  }
  return { owner: match[1]!, repo: match[2]! };
}

/** Link to the current workflow run (for deployment statuses and reports), when running in Actions. */
export function currentRunUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  if (!repo || !run) return undefined;
  const attempt = env.GITHUB_RUN_ATTEMPT ? `/attempts/${env.GITHUB_RUN_ATTEMPT}` : "";
  return `${server ?? "https://github.com"}/${repo}/actions/runs/${run}${attempt}`;
}

/** HTTP status of an Octokit RequestError, if that is what `err` is. */
export function httpStatus(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : undefined;
}

/** Turns an API failure into one readable line (what we tried, GitHub's answer, the usual fix). */
export function gitHubError(what: string, err: unknown): UserError {
  const status = httpStatus(err);
  const message = (err as Error)?.message?.split("\n")[0] ?? String(err);
  const hint =
    status === 401
      ? "the token is invalid or expired"
      : status === 403 || status === 404
        ? "check the job's `permissions:` (e.g. pull-requests: write, deployments: write, contents: write)"
        : undefined;
  return new UserError(`GitHub API: ${what} failed (${status ?? "no response"}: ${message})`, {
    exitCode: ExitCode.environment,
    ...(hint ? { hint } : {}),
    cause: err,
  });
}
