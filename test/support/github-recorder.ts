import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for api.github.com that records every REST call and answers like GitHub for the
 * endpoints modelship uses (issue comments, issues, deployments + statuses, workflow dispatch, release
 * assets). State lives in memory for the recorder's lifetime, so a second action run sees the comment
 * the first one created. Anything else answers 404 like GitHub does — and is still recorded.
 *
 *   const gh = await startGitHubRecorder();        // gh.url → GITHUB_API_URL
 *   ... run code / an action ...
 *   gh.calls  // [{ method: "POST", path: "/repos/o/r/issues/7/comments", query, body, auth }]
 *   gh.take() // returns the calls so far and clears the list
 *   await gh.close();
 */
export interface RecordedCall {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** Authorization header (to assert a token was sent). */
  auth: string | undefined;
}

interface Comment {
  id: number;
  body: string;
  issue: number;
  repo: string;
}
interface Deployment {
  id: number;
  repo: string;
  ref: string;
  environment: string;
  payload: unknown;
  statuses: Array<Record<string, unknown>>;
}
interface Issue {
  number: number;
  repo: string;
  title: string;
  body: string;
  labels: string[];
  state: "open" | "closed";
}
interface ReleaseAsset {
  id: number;
  name: string;
  content: string | Uint8Array;
}
interface Release {
  id: number;
  repo: string;
  tag: string;
  assets: ReleaseAsset[];
}

export interface GitHubRecorder {
  url: string;
  calls: RecordedCall[];
  take(): RecordedCall[];
  /** Answers `status` (GitHub's error body) to matching calls from now on — e.g. 403 for a fork PR's token. */
  failWith(method: string, path: RegExp, status: number, message?: string): void;
  /** Publishes a release with assets (e.g. the production model.json) for code under test to find. */
  addRelease(repo: string, tag: string, assets: Record<string, string | Uint8Array>): void;
  state: { comments: Comment[]; deployments: Deployment[]; issues: Issue[]; dispatches: unknown[] };
  close(): Promise<void>;
}

export async function startGitHubRecorder(): Promise<GitHubRecorder> {
  const calls: RecordedCall[] = [];
  const comments: Comment[] = [];
  const deployments: Deployment[] = [];
  const issues: Issue[] = [];
  const releases: Release[] = [];
  const dispatches: unknown[] = [];
  const failures: Array<{ method: string; path: RegExp; status: number; message: string }> = [];
  let nextId = 1000;
  let base = "";

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const raw = await readBody(req);
    let body: unknown = raw;
    if (raw && (req.headers["content-type"] ?? "").includes("json")) body = JSON.parse(raw);
    calls.push({
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: raw === "" ? undefined : body,
      auth: req.headers.authorization,
    });
    const send = (status: number, data?: unknown) => {
      res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
      res.end(data === undefined ? "" : JSON.stringify(data));
    };
    const b = (body ?? {}) as Record<string, unknown>;
    const method = req.method;
    const failure = failures.find((f) => f.method === method && f.path.test(url.pathname));
    if (failure)
      return send(failure.status, {
        message: failure.message,
        documentation_url: "https://docs.github.com/rest",
      });
    let r: RegExpExecArray = [] as unknown as RegExpExecArray;
    /** Matches the path (and method, when given); the captures land in `r`. */
    const on = (want: string | null, re: RegExp): boolean => {
      if (want && method !== want) return false;
      const hit = re.exec(url.pathname);
      if (hit) r = hit;
      return hit !== null;
    };
    const html = (repo: string, rest: string) => `https://github.com/${repo}/${rest}`;
    const commentJson = (c: Comment) => ({
      id: c.id,
      body: c.body,
      html_url: html(c.repo, `pull/${c.issue}#issuecomment-${c.id}`),
      user: { login: "github-actions[bot]", type: "Bot" },
    });
    const issueJson = (i: Issue) => ({
      number: i.number,
      title: i.title,
      body: i.body,
      state: i.state,
      labels: i.labels.map((name) => ({ name })),
      html_url: html(i.repo, `issues/${i.number}`),
    });

    if (on("GET", /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/comments$/)) {
      const [, repo, n] = r;
      return send(200, comments.filter((c) => c.repo === repo && c.issue === Number(n)).map(commentJson));
    }
    if (on("POST", /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/comments$/)) {
      const c: Comment = { id: nextId++, body: String(b.body), issue: Number(r[2]), repo: r[1]! };
      comments.push(c);
      return send(201, commentJson(c));
    }
    if (on("PATCH", /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)$/)) {
      const c = comments.find((x) => x.repo === r[1] && x.id === Number(r[2]));
      if (!c) return send(404, { message: "Not Found" });
      c.body = String(b.body);
      return send(200, commentJson(c));
    }
    if (on("POST", /^\/repos\/([^/]+\/[^/]+)\/deployments$/)) {
      const d: Deployment = {
        id: nextId++,
        repo: r[1]!,
        ref: String(b.ref),
        environment: String(b.environment ?? "production"),
        payload: b.payload,
        statuses: [],
      };
      deployments.push(d);
      return send(201, {
        id: d.id,
        ref: d.ref,
        environment: d.environment,
        payload: d.payload,
        task: b.task,
      });
    }
    if (on(null, /^\/repos\/([^/]+\/[^/]+)\/deployments\/(\d+)\/statuses$/)) {
      const d = deployments.find((x) => x.repo === r[1] && x.id === Number(r[2]));
      if (!d) return send(404, { message: "Not Found" });
      if (method === "GET") return send(200, d.statuses);
      if (method === "POST") {
        const s = { id: nextId++, ...b };
        d.statuses.push(s);
        return send(201, s);
      }
    }
    if (on("POST", /^\/repos\/([^/]+\/[^/]+)\/actions\/workflows\/([^/]+)\/dispatches$/)) {
      dispatches.push({ repo: r[1], workflow: r[2], ...b });
      res.writeHead(204);
      return res.end();
    }
    if (on("GET", /^\/repos\/([^/]+\/[^/]+)\/issues$/)) {
      const label = url.searchParams.get("labels");
      const state = url.searchParams.get("state") ?? "open";
      return send(
        200,
        issues
          .filter((i) => i.repo === r[1] && (state === "all" || i.state === state))
          .filter((i) => !label || label.split(",").every((l) => i.labels.includes(l)))
          .map(issueJson),
      );
    }
    if (on("POST", /^\/repos\/([^/]+\/[^/]+)\/issues$/)) {
      const i: Issue = {
        number: issues.length + 1,
        repo: r[1]!,
        title: String(b.title),
        body: String(b.body ?? ""),
        labels: (b.labels as string[] | undefined) ?? [],
        state: "open",
      };
      issues.push(i);
      return send(201, issueJson(i));
    }
    if (on("PATCH", /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)$/)) {
      const i = issues.find((x) => x.repo === r[1] && x.number === Number(r[2]));
      if (!i) return send(404, { message: "Not Found" });
      if (typeof b.title === "string") i.title = b.title;
      if (typeof b.body === "string") i.body = b.body;
      return send(200, issueJson(i));
    }
    if (on("GET", /^\/repos\/([^/]+\/[^/]+)\/releases\/tags\/(.+)$/)) {
      const rel = releases.find((x) => x.repo === r[1] && x.tag === decodeURIComponent(r[2]!));
      if (!rel) return send(404, { message: "Not Found" });
      return send(200, {
        id: rel.id,
        tag_name: rel.tag,
        assets: rel.assets.map((a) => ({
          id: a.id,
          name: a.name,
          url: `${base}/repos/${rel.repo}/releases/assets/${a.id}`,
        })),
      });
    }
    if (on("GET", /^\/repos\/([^/]+\/[^/]+)\/releases\/assets\/(\d+)$/)) {
      const asset = releases.flatMap((x) => x.assets).find((a) => a.id === Number(r[2]));
      if (!asset) return send(404, { message: "Not Found" });
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(asset.content);
    }
    send(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: String(err) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    calls,
    take: () => calls.splice(0, calls.length),
    failWith(method, path, status, message = "Resource not accessible by integration") {
      failures.push({ method, path, status, message });
    },
    addRelease(repo, tag, assets) {
      releases.push({
        id: nextId++,
        repo,
        tag,
        assets: Object.entries(assets).map(([name, content]) => ({ id: nextId++, name, content })),
      });
    },
    state: { comments, deployments, issues, dispatches },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** `METHOD /path` lines — the compact form tests assert sequences with. */
export function callLines(calls: RecordedCall[]): string[] {
  return calls.map((c) => `${c.method} ${c.path}`);
}
