#!/usr/bin/env bash
# Builds a local stand-in for the official `node:20-bookworm-slim` image from this host's own node
# binary, for machines that cannot pull from a registry (CI here). The rootfs holds only what the
# model server needs: node, the shared libraries node and libonnxruntime link against (found with
# ldd), glibc's C.UTF-8 locale, a minimal /etc/passwd with the same `node` user (uid 1000) the
# official image has, and /tmp.
# It is imported with `docker import` (Podman's Docker API accepts it too).
#
# Usage: scripts/base-image.sh [repository]    (default: modelship-base)
# Prints the image reference on its last line. The tag is derived from the content, so an unchanged
# host reuses the existing image and a changed node binary or library set gets a new tag (the same in
# every checkout: the script is hashed by content, not by path).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:-modelship-base}
node_bin=$(readlink -f "$(command -v node)")
ort_dir=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
[ -x "$node_bin" ] || { echo "base-image: node not found on PATH" >&2; exit 3; }
command -v docker >/dev/null || { echo "base-image: the docker CLI is not installed" >&2; exit 3; }

# Every shared object node and onnxruntime need, resolved to real files (ldd prints "name => path").
libs=$( { ldd "$node_bin"; [ -d "$ort_dir" ] && ldd "$ort_dir"/*.so* "$ort_dir"/*.node; } 2>/dev/null \
  | awk '/=>/ && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | grep -v "$ort_dir" | sort -u)

key=$( { sha256sum "$node_bin"; for l in $libs; do sha256sum "$(readlink -f "$l")"; done; sha256sum <"$0";
  find /usr/lib/locale/C.utf8 -type f -exec sha256sum {} + 2>/dev/null || true; } \
  | sha256sum | cut -c1-12)
version=$("$node_bin" -p 'process.versions.node')
ref="$repo:node$version-$key"

if docker image inspect "$ref" >/dev/null 2>&1; then
  echo "base-image: $ref already present" >&2
  echo "$ref"
  exit 0
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/home/node" "$root/lib64"
chmod 1777 "$root/tmp"
cp "$node_bin" "$root/usr/local/bin/node"
for l in $libs; do
  # Keep the path the dynamic loader looks under, with the symlink's name pointing at the real file.
  mkdir -p "$root$(dirname "$l")"
  cp -L "$l" "$root$l"
done
# Debian's loader lives in /lib/x86_64-linux-gnu; ELF interpreters ask for /lib64/ld-linux-x86-64.so.2.
if [ ! -e "$root/lib64/ld-linux-x86-64.so.2" ] && [ -e "$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]; then
  ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
fi
# onnxruntime's StringNormalizer (text models) constructs the C.UTF-8 locale; glibc loads it from here,
# as Debian's libc-bin (and so the official slim image) ships it.
if [ -d /usr/lib/locale/C.utf8 ]; then
  mkdir -p "$root/usr/lib/locale"
  cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/"
fi
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
node:x:1000:1000::/home/node:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chown -R 1000:1000 "$root/home/node"

tar -C "$root" --numeric-owner -cf - . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change "ENV NODE_VERSION=$version" \
  --change 'CMD ["node"]' \
  --message "modelship local base: host node $version + shared libraries" \
  - "$ref" >/dev/null
echo "base-image: built $ref" >&2
# Older content keys of this repository are stale; untag them (an image still in use stays).
stale=$(docker images --format '{{.Repository}}:{{.Tag}}' | sed 's|^localhost/||' | grep "^$repo:" | grep -vx "$ref" || true)
for old in $stale; do docker rmi "$old" >/dev/null 2>&1 || true; done
echo "$ref"
