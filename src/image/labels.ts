import type { ModelCard } from "../contracts/card.js";

/** Label keys other parts read back from images and containers (canary deploy, status). */
export const MODEL_LABELS = {
  name: "dev.modelship.model.name",
  version: "dev.modelship.model.version",
  sha256: "dev.modelship.model.sha256",
} as const;

export const OCI_LABELS = {
  title: "org.opencontainers.image.title",
  version: "org.opencontainers.image.version",
  revision: "org.opencontainers.image.revision",
  source: "org.opencontainers.image.source",
  created: "org.opencontainers.image.created",
} as const;

/** The labels every model image carries (set by the Dockerfile from build args, and by --label). */
export function imageLabels(
  card: ModelCard,
  meta: { revision: string | null; source: string | null; created: Date },
): Record<string, string> {
  return {
    [OCI_LABELS.title]: `modelship-${card.name}`,
    [OCI_LABELS.version]: card.version,
    [OCI_LABELS.revision]: meta.revision ?? "",
    [OCI_LABELS.source]: meta.source ?? "",
    [OCI_LABELS.created]: meta.created.toISOString(),
    [MODEL_LABELS.name]: card.name,
    [MODEL_LABELS.version]: card.version,
    [MODEL_LABELS.sha256]: card.model.sha256,
  };
}
