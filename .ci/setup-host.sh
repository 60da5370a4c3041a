#!/usr/bin/env bash
# Prepares this machine (as root on Debian/Ubuntu) for modelship's tests through the product's own
# set-up path, `modelship host setup` (src/host/setup.ts — the same code as `host init --install` and
# the demo's host step): a container engine (Docker when its daemon can run, else Podman's Docker API
# with the containers.conf this machine needs, started under systemd or our supervisor), HAProxy, plus
# what the test suite needs beyond the product (wrk, Prometheus/promtool; the fixture generators'
# locale, python3-torch and python3-sklearn below). Idempotent.
# Needs `npm ci` first (it runs the compiled CLI). Prints the DOCKER_HOST to use on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
# modelship package (test/package.test.ts): skl2onnx text graphs are checked against the original under
# en_US.UTF-8, a PyTorch logits model is exported at test time with Debian's python3-torch, and the
# text bundle is compared row by row with scikit-learn's own prediction (python3-sklearn).
if ! locale -a 2>/dev/null | grep -qix 'en_US.utf8'; then
  echo "setup-host: generating the en_US.UTF-8 locale" >&2
  dpkg -s locales >/dev/null 2>&1 || { apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends locales >&2; }
  sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
  locale-gen >&2
fi
if ! /usr/bin/python3 -c 'import torch, onnx, sklearn' >/dev/null 2>&1; then
  echo "setup-host: installing python3-torch python3-onnx python3-sklearn (test fixture generators)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-onnx python3-sklearn >&2
fi
args=(host setup --with wrk,prometheus,promtool --print-docker-host)
if [ -n "${MODELSHIP_PODMAN_SOCK_DIR:-}" ]; then args+=(--engine-socket "$MODELSHIP_PODMAN_SOCK_DIR/podman.sock"); fi
node bin/modelship.js "${args[@]}"
