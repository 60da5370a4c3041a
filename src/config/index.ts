export * from "./drift.js";
export * from "./gate.js";
export * from "./load.js";
export * from "./schema.js";
export * from "./train.js";
