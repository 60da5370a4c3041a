export * from "./evidence.js";
export * from "./read.js";
export * from "./schema.js";
export * from "./version.js";
export * from "./write.js";
