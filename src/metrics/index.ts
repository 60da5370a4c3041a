export * from "./classification.js";
export * from "./histogram.js";
export * from "./render.js";
