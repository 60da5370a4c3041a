export {
  PIN_SHADOW_BACKEND,
  pinEntries,
  type RouterPaths,
  renderConfig,
  renderPinMap,
  routerPaths,
  shadowUrl,
} from "./config.js";
export { type LiveServer, planChanges, type RouterPlan } from "./planner.js";
export { type ApplyResult, Router, type RunningInfo } from "./router.js";
export { parseServersState, parseStatCsv, RuntimeApi } from "./runtime-api.js";
export {
  BACKEND,
  DEFAULT_PIN_HEADER,
  percentToWeight,
  RouterDesired,
  RouterSettings,
  ServerSpec,
  ServerState,
  ShadowTarget,
  type ShadowTargetInput,
  weightToPercent,
} from "./schema.js";
export {
  type CounterSnapshot,
  diffCounters,
  type ResponseCodes,
  type ServerCounters,
  type ServerDelta,
  type ServerStats,
  toServerStats,
} from "./stats.js";
