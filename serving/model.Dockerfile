# A modelship MODEL image: the server image (serving/Dockerfile, built once per server content key and
# tagged modelship-server:<key>) plus the model bundle and the labels. `modelship build` stages the
# context: model/ (model.json + model.onnx) and this file, nothing else. Everything else — the
# FROM-scratch runtime tree, the `node` user, ENV, HEALTHCHECK, CMD — comes from the server image.
ARG SERVER_IMAGE=modelship-server:unknown
FROM ${SERVER_IMAGE}
# Root-owned (COPY ignores USER) and read-only to the server, like the code below it.
COPY model/ /model/
# `modelship build` appends one LABEL instruction with the image's labels (OCI title, description,
# version, revision, source, created; dev.modelship.model.name/version/sha256) as literal values:
# one step (each instruction is a commit, ~0.5 s on Podman), and a changed value is a changed
# instruction, never a cached one.
