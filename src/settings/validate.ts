import { DEFAULT_LIMITS } from "../config/train.js";
import type { SettingsTable } from "./table.js";

/**
 * The production-checklist limits of `modelship train`, `modelship validate` and
 * actions/train-and-validate; spelt like modelship.yaml's `validate:` keys and the gate's `runtime:` ones.
 * The action's defaults are empty: modelship.yaml's `validate:` section applies before the built-in ones.
 */
export const CHECK_LIMIT_SETTINGS: SettingsTable = [
  {
    key: "maxSizeMb",
    flag: "--max-size-mb <n>",
    default: String(DEFAULT_LIMITS.maxSizeMb),
    actionDefault: "",
    number: "positive",
    description: "check: model file smaller than this many MB (or validate.maxSizeMb)",
  },
  {
    key: "maxLoadMs",
    flag: "--max-load-ms <n>",
    default: String(DEFAULT_LIMITS.maxLoadMs),
    actionDefault: "",
    number: "positive",
    description: "check: session load time below this many ms (or validate.maxLoadMs)",
  },
  {
    key: "maxP95Ms",
    flag: "--max-p95-ms <n>",
    default: String(DEFAULT_LIMITS.maxP95Ms),
    actionDefault: "",
    number: "positive",
    description: "check: single-row p95 latency below this many ms (or validate.maxP95Ms)",
  },
];
