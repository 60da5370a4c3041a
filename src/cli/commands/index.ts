import type { Command } from "commander";
import { register as build } from "./build.js";
import { register as demo } from "./demo.js";
import { register as deploy } from "./deploy.js";
import { register as drift } from "./drift.js";
import { register as gate } from "./gate.js";
import { register as host } from "./host.js";
import { register as packageModel } from "./package.js";
import { register as rollback } from "./rollback.js";
import { register as serve } from "./serve.js";
import { register as status } from "./status.js";
import { register as train } from "./train.js";
import { register as validate } from "./validate.js";

/** Every CLI command registers itself here (one module per command under ./). */
export const commands: Array<(program: Command) => void> = [
  build,
  demo,
  deploy,
  drift,
  gate,
  host,
  packageModel,
  rollback,
  serve,
  status,
  train,
  validate,
];
