import { z } from "zod";

const nonEmpty = z.string().trim().min(1);

/**
 * `package:` in modelship.yaml: turning an ONNX classifier trained elsewhere into a bundle
 * (`modelship package`). Paths are relative to the config file; flags override every key.
 */
export const packageConfigSchema = z
  .object({
    model: nonEmpty.optional().describe("The exported ONNX file (skl2onnx, torch.onnx.export, …)."),
    data: nonEmpty.optional().describe("Labelled evaluation CSV (held-out rows the model never saw)."),
    labelColumn: nonEmpty
      .optional()
      .describe("CSV column holding the true label (default: the last column)."),
    textColumn: nonEmpty.optional().describe("Text models: CSV column holding the text (default: text)."),
    featureColumns: z
      .array(nonEmpty)
      .min(1)
      .optional()
      .describe("Tabular models: feature columns in the model's input order (default: every other column)."),
    labels: z
      .array(nonEmpty)
      .min(2)
      .optional()
      .describe("Classes in probability-column order, for graphs that do not name them (PyTorch)."),
    scores: z
      .enum(["probabilities", "logits"])
      .optional()
      .describe("What the score output holds; logits are softmaxed in the bundle. Unset: detected."),
    inputName: nonEmpty.optional().describe("Input to feed when the graph has several."),
    reference: nonEmpty
      .optional()
      .describe("CSV for the reference distributions (e.g. the training data); default: data."),
    onEmpty: z
      .enum(["error", "drop"])
      .optional()
      .describe("Rows with an empty label: error (default) or drop."),
    out: nonEmpty.optional().describe("Directory that receives <name>-<version>/ bundles."),
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' or '-'")
      .optional()
      .describe("Model name; bundles are written to <out>/<name>-<version>/."),
  })
  .strict();

export type PackageConfig = z.infer<typeof packageConfigSchema>;

export interface PackageSettings {
  model: string;
  data: string;
  labelColumn: string | undefined;
  textColumn: string | undefined;
  featureColumns: string[] | undefined;
  labels: string[] | undefined;
  scores: "probabilities" | "logits" | undefined;
  inputName: string | undefined;
  reference: string | undefined;
  onEmpty: "error" | "drop";
  out: string;
  name: string;
}

export type PackageFlags = { [K in keyof PackageSettings]?: PackageSettings[K] | undefined };
