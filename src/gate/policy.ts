import type { GatePolicy } from "../config/gate.js";

/** Floor for one class, or undefined when no floor applies. */
export function classFloor(policy: GatePolicy, label: string): number | undefined {
  const floor = policy.minimum.classF1;
  if (floor === undefined || typeof floor === "number") return floor;
  return floor[label] ?? floor["*"];
}
