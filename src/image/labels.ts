import { z } from "zod";
import { type ModelCard, modelCardSchema, versionSchema } from "../contracts/card.js";
import { ExitCode, UserError } from "../util/errors.js";
import { safeText } from "../util/text.js";

/** Label keys other parts read back from images and containers (canary deploy, status). */
export const MODEL_LABELS = {
  name: "dev.modelship.model.name",
  version: "dev.modelship.model.version",
  sha256: "dev.modelship.model.sha256",
} as const;

export const OCI_LABELS = {
  title: "org.opencontainers.image.title",
  description: "org.opencontainers.image.description",
  version: "org.opencontainers.image.version",
  revision: "org.opencontainers.image.revision",
  source: "org.opencontainers.image.source",
  created: "org.opencontainers.image.created",
} as const;

/** The labels every model image carries (one LABEL instruction `modelship build` adds to the staged model.Dockerfile). */
export function imageLabels(
  card: ModelCard,
  meta: { revision: string | null; source: string | null; created: Date },
): Record<string, string> {
  return {
    [OCI_LABELS.title]: `modelship-${card.name}`,
    [OCI_LABELS.description]: `modelship model server for ${card.name} ${card.version}`,
    [OCI_LABELS.version]: card.version,
    [OCI_LABELS.revision]: meta.revision ?? "",
    [OCI_LABELS.source]: meta.source ?? "",
    [OCI_LABELS.created]: meta.created.toISOString(),
    [MODEL_LABELS.name]: card.name,
    [MODEL_LABELS.version]: card.version,
    [MODEL_LABELS.sha256]: card.model.sha256,
  };
}

/**
 * The model labels of an image or container, held to the same patterns as the bundle card they were
 * written from. Labels are input from whoever built or pushed the image: nothing reads them unchecked
 * (a newline or escape in a version would otherwise reach the ledger, HAProxy server names, the terminal).
 */
export const modelLabelsSchema = z.object({
  [MODEL_LABELS.name]: modelCardSchema.shape.name,
  [MODEL_LABELS.version]: versionSchema,
  [MODEL_LABELS.sha256]: z.string().regex(/^[0-9a-f]{64}$/, "sha256: 64 lower-case hex digits"),
});

export interface ModelIdentity {
  name: string;
  version: string;
  sha256: string;
}

/** The model an image's labels name, or a one-line error saying which label is wrong (exit 2). */
export function readModelLabels(labels: Record<string, string>, what: string): ModelIdentity {
  const missing = Object.values(MODEL_LABELS).filter((k) => labels[k] === undefined);
  if (missing.length === Object.keys(MODEL_LABELS).length)
    throw new UserError(`${what} carries no modelship model labels (${MODEL_LABELS.version}, …)`, {
      exitCode: ExitCode.usage,
      hint: "deploy images built by `modelship build`",
    });
  const parsed = modelLabelsSchema.safeParse(labels);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? "");
    const value = labels[key];
    throw new UserError(
      `${what}: label ${key}${value === undefined ? " is missing" : `=${JSON.stringify(safeText(value).slice(0, 80))} is invalid`} (${issue.message})`,
      {
        exitCode: ExitCode.usage,
        hint: "deploy images built by `modelship build`; labels are checked, never trusted",
      },
    );
  }
  const l = parsed.data;
  return { name: l[MODEL_LABELS.name], version: l[MODEL_LABELS.version], sha256: l[MODEL_LABELS.sha256] };
}

/** Where what a container serves (`/model-info`) differs from what its labels or the ledger say; [] when equal. */
export function identityMismatch(expected: ModelIdentity, served: Partial<ModelIdentity> | null): string[] {
  if (!served) return ["/model-info did not answer with a model identity"];
  const out: string[] = [];
  for (const key of ["name", "version", "sha256"] as const)
    if (served[key] !== expected[key])
      out.push(
        `${key} ${JSON.stringify(safeText(String(served[key])).slice(0, 80))} served, ${JSON.stringify(expected[key])} expected`,
      );
  return out;
}
