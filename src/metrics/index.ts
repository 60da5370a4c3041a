export * from "./classification.js";
export * from "./histogram.js";
