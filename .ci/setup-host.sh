#!/usr/bin/env bash
# Prepares a fresh Debian machine (as root) for modelship's tests: container engine (Podman's
# Docker-compatible API service on a unix socket), HAProxy, wrk, Prometheus. Idempotent.
# Prints the DOCKER_HOST to use on its last line.
set -euo pipefail
SOCK_DIR=${MODELSHIP_PODMAN_SOCK_DIR:-/run/modelship}
SOCK="$SOCK_DIR/podman.sock"
need=()
for pair in podman:podman runc:runc haproxy:haproxy wrk:wrk prometheus:prometheus promtool:prometheus; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-host: installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) podman runc >&2
fi
# modelship package (test/package.test.ts): skl2onnx text graphs are checked against the original under
# en_US.UTF-8, and a PyTorch logits model is exported at test time with Debian's python3-torch.
if ! locale -a 2>/dev/null | grep -qix 'en_US.utf8'; then
  echo "setup-host: generating the en_US.UTF-8 locale" >&2
  dpkg -s locales >/dev/null 2>&1 || { apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends locales >&2; }
  sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
  locale-gen >&2
fi
if ! /usr/bin/python3 -c 'import torch, onnx' >/dev/null 2>&1; then
  echo "setup-host: installing python3-torch python3-onnx (test fixture generator)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-onnx >&2
fi
# The sandbox cannot raise rlimits and crun fails on hybrid cgroups: use runc and fixed ulimits.
mkdir -p /etc/containers
if ! grep -q 'runtime = "runc"' /etc/containers/containers.conf 2>/dev/null; then
  cat > /etc/containers/containers.conf <<'CONF'
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=16384:16384", "nproc=8192:8192"]
CONF
fi
mkdir -p "$SOCK_DIR"
if ! curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
  rm -f "$SOCK"
  nohup podman system service --time=0 "unix://$SOCK" >"$SOCK_DIR/podman-service.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null || { echo "setup-host: podman service did not start" >&2; cat "$SOCK_DIR/podman-service.log" >&2; exit 1; }
echo "unix://$SOCK"
