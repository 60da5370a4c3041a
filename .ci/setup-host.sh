#!/usr/bin/env bash
# Prepares this machine (as root on Debian/Ubuntu) for modelship's tests through the product's own
# set-up path, `modelship host setup` (src/host/setup.ts — the same code as `host init --install` and
# the demo's host step): a container engine (Docker when its daemon can run, else Podman's Docker API
# with the containers.conf this machine needs, started under systemd or our supervisor), HAProxy, plus
# what the test suite needs beyond the product (wrk, Prometheus/promtool). Idempotent.
# Needs `npm ci` first (it runs the compiled CLI). Prints the DOCKER_HOST to use on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
args=(host setup --with wrk,prometheus,promtool --print-docker-host)
if [ -n "${MODELSHIP_PODMAN_SOCK_DIR:-}" ]; then args+=(--engine-socket "$MODELSHIP_PODMAN_SOCK_DIR/podman.sock"); fi
node bin/modelship.js "${args[@]}"
