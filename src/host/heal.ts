import type { LedgerData, Role, VersionEntry } from "../ledger/schema.js";

/**
 * Self-healing, the decision half: which containers the ledger says should run (stable, canary,
 * standby) are not running, and what to do about each — start it again (it still exists), recreate it
 * from its recorded image and run settings (it is gone), or give up on it because it kept dying
 * (restarts are rate-limited through the ledger's `restart` history events). Pure; the executor is
 * heal-run.ts, and `host repair` / `host watch` call it before the ledger's reconcile.
 */

export interface HealPolicy {
  /** Restarts of one version allowed within `windowMs`; beyond that it is reported, not restarted. */
  maxRestarts: number;
  windowMs: number;
}

export const DEFAULT_HEAL_POLICY: HealPolicy = { maxRestarts: 3, windowMs: 15 * 60_000 };

/** What the engine says about a container (by name). */
export type LiveState = "running" | "restarting" | "stopped" | "missing";

export const HEALED_ROLES: readonly Role[] = ["stable", "canary", "standby"];

type Container = NonNullable<VersionEntry["container"]>;

export type HealAction =
  | { kind: "start"; version: string; role: Role; container: Container; restarts: number }
  | {
      kind: "recreate";
      version: string;
      role: Role;
      image: string;
      container: Container;
      restarts: number;
    }
  | {
      kind: "give-up";
      version: string;
      role: Role;
      container: Container;
      state: LiveState;
      restarts: number;
    };

/** Restart events for `version` within the policy window ending at `now`. */
export function recentRestarts(ledger: LedgerData, version: string, now: number, policy: HealPolicy): number {
  return ledger.history.filter(
    (e) => e.kind === "restart" && e.version === version && now - Date.parse(e.at) < policy.windowMs,
  ).length;
}

/**
 * The actions that bring every container the ledger wants back. `live` maps container names to what
 * the engine reports; a name not in it counts as missing. A container the engine is restarting by
 * itself (restart policy) is left to it.
 */
export function planHeal(
  ledger: LedgerData,
  live: Record<string, LiveState>,
  now: number,
  policy: HealPolicy = DEFAULT_HEAL_POLICY,
): HealAction[] {
  const actions: HealAction[] = [];
  for (const v of ledger.versions) {
    if (!HEALED_ROLES.includes(v.role) || !v.container) continue;
    const state = live[v.container.name] ?? "missing";
    if (state === "running" || state === "restarting") continue;
    const restarts = recentRestarts(ledger, v.version, now, policy);
    const base = { version: v.version, role: v.role, container: v.container, restarts };
    if (restarts >= policy.maxRestarts) actions.push({ kind: "give-up", ...base, state });
    else if (state === "stopped") actions.push({ kind: "start", ...base });
    else actions.push({ kind: "recreate", ...base, image: v.image.ref });
  }
  // The stable serves users: heal it first, then the standby that protects it, then a canary.
  const rank: Partial<Record<Role, number>> = { stable: 0, standby: 1, canary: 2 };
  return actions.sort((a, b) => (rank[a.role] ?? 3) - (rank[b.role] ?? 3));
}

export function describeHeal(a: HealAction, policy: HealPolicy = DEFAULT_HEAL_POLICY): string {
  const who = `${a.role} ${a.version} (${a.container.name})`;
  switch (a.kind) {
    case "start":
      return `${who} is stopped: starting it again`;
    case "recreate":
      return `${who} is gone: recreating it from ${a.image} on port ${a.container.hostPort}`;
    case "give-up":
      return `${who} keeps dying: ${a.restarts} restarts in the last ${Math.round(policy.windowMs / 60_000)} min, not restarting it again (see \`docker logs ${a.container.name}\`; deploy or roll back to replace it)`;
  }
}
