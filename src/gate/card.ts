import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import {
  CARD_FILE,
  classMetricsSchema,
  goldenExampleSchema,
  ioSignatureSchema,
  MODEL_FILE,
  metricsSchema,
  runtimeSchema,
} from "../contracts/card.js";
import { UserError } from "../util/errors.js";

/**
 * What the gate reads from a model.json. Deliberately looser than `modelCardSchema`: a card with a
 * metric missing must still load so the verdict can show a failing row for it instead of crashing.
 * Fields that are present are validated with the contract's own schemas.
 */
export const gateCardSchema = z.object({
  name: z.string().optional(),
  version: z.string().optional(),
  model: z.object({ sha256: z.string().optional(), sizeBytes: z.number().optional() }).partial().optional(),
  io: ioSignatureSchema.partial().optional(),
  metrics: metricsSchema
    .partial()
    .extend({ classes: z.record(z.string(), classMetricsSchema.partial()).optional() })
    .default({}),
  runtime: runtimeSchema.partial().optional(),
  golden: z.array(goldenExampleSchema).optional(),
  /** Where the evaluation rows come from: the dataset and, for trained bundles, the split's seed. */
  dataset: z
    .object({
      path: z.string(),
      sha256: z.string(),
      textColumn: z.string(),
      labelColumn: z.string(),
      rows: z.object({ test: z.number() }).partial().loose(),
    })
    .partial()
    .loose()
    .optional(),
  training: z
    .object({ seed: z.number().int(), params: z.record(z.string(), z.unknown()) })
    .partial()
    .loose()
    .nullable()
    .optional(),
});

export type GateCard = z.infer<typeof gateCardSchema>;

export interface LoadedCard {
  card: GateCard;
  /** The model.json that was read. */
  cardPath: string;
  /** The bundle directory when model.onnx sits next to model.json (needed for golden parity). */
  bundleDir: string | undefined;
  /** Where it came from, for the report: a path, a ledger entry, a release asset. */
  source: string;
}

/** Accepts a bundle directory or a model.json path. */
export async function loadCard(path: string, role: "candidate" | "baseline"): Promise<LoadedCard> {
  let cardPath = path;
  const info = await stat(path).catch(() => undefined);
  if (!info)
    throw new UserError(`${role} ${path} does not exist`, { hint: "pass a bundle directory or model.json" });
  if (info.isDirectory()) cardPath = join(path, CARD_FILE);
  const text = await readFile(cardPath, "utf8").catch(() => {
    throw new UserError(`${role} ${path} has no ${CARD_FILE}`, { hint: "is this a modelship bundle?" });
  });
  const card = parseCard(text, `${role} ${cardPath}`);
  const dir = dirname(cardPath);
  const hasModel = await stat(join(dir, MODEL_FILE)).then(
    (s) => s.isFile(),
    () => false,
  );
  return {
    card,
    cardPath,
    bundleDir: hasModel ? dir : undefined,
    source: info.isDirectory() ? path : cardPath,
  };
}

export function parseCard(text: string, where: string): GateCard {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UserError(`${where} is not valid JSON`);
  }
  const parsed = gateCardSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UserError(`${where}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return parsed.data;
}

export function describeCard(card: GateCard, fallback: string): string {
  if (card.name && card.version) return `${card.name} ${card.version}`;
  return card.version ?? card.name ?? basename(fallback);
}
