// Imported first by the bundles of actions that need onnxruntime-node or the compiled server
// (scripts/build-actions.mjs): installs them on first use outside a modelship checkout.
import { bootstrapFromBundle } from "./runtime.js";

bootstrapFromBundle(import.meta.url);
