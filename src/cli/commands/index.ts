import type { Command } from "commander";

/** Every CLI command registers itself here (one module per command under ./). */
export const commands: Array<(program: Command) => void> = [];
