import { DEFAULT_BASE_IMAGE } from "../image/build.js";
import type { SettingsTable } from "./table.js";

/** `modelship build` and actions/build-image. */
export const BUILD_SETTINGS: SettingsTable = [
  {
    key: "model",
    flag: "--model <bundle>",
    input: "bundle",
    required: true,
    description: "model bundle directory (model.json + model.onnx)",
  },
  {
    key: "repository",
    flag: "--repository <repo>",
    description:
      "image repository without tag, as for `deploy --repository` (default: modelship/<model name>)",
    deprecatedFlags: ["--image <name>"],
    deprecatedInputs: ["image"],
  },
  {
    key: "tag",
    flag: "--tag <tag>",
    input: "tags",
    repeatable: true,
    description:
      "extra tag or full reference (repeatable; the input takes a list); <repository>:<version> and <repository>:sha-<git sha> are always added",
  },
  {
    key: "push",
    flag: "--push",
    actionDefault: "false",
    description: "push every tag after the smoke test passed",
  },
  {
    key: "registry",
    flag: "--registry <host>",
    description: "log in to this registry before pushing (e.g. ghcr.io)",
  },
  { key: "username", flag: "--username <user>", description: "registry user name (with --registry)" },
  {
    key: "passwordStdin",
    flag: "--password-stdin",
    input: null,
    description: "read the registry password or token from standard input",
  },
  {
    key: "password",
    flag: null,
    input: "password",
    description: "registry password or token (with registry; GHCR accepts secrets.GITHUB_TOKEN)",
  },
  {
    key: "baseImage",
    flag: "--base-image <ref>",
    description: `base image with node on PATH and a node user (default: ${DEFAULT_BASE_IMAGE})`,
  },
  {
    key: "smoke",
    flag: "--no-smoke",
    input: "smoke",
    actionDefault: "true",
    description: "skip the golden smoke test (not recommended: it is what stops a broken image)",
  },
  {
    key: "smokeTimeout",
    flag: "--smoke-timeout <seconds>",
    default: "60",
    description: "how long the smoke container may take to become ready",
  },
  {
    key: "json",
    flag: "--json",
    input: null,
    description: "print one JSON document instead of progress lines",
  },
];
