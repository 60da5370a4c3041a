#!/usr/bin/env bash
# Fails when the committed actions/*/dist is stale: rebuilds every action into a temp dir with
# scripts/build-actions.mjs and compares byte for byte. Fix: `npm run build:actions` and commit dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node scripts/build-actions.mjs --out-dir "$tmp" >/dev/null
stale=0
for main in actions/*/main.ts; do
  [ -e "$main" ] || continue
  name=$(basename "$(dirname "$main")")
  committed="actions/$name/dist/index.js"
  if [ ! -f "$committed" ]; then
    echo "check-dist: $committed is missing"; stale=1; continue
  fi
  if ! cmp -s "$tmp/$name/dist/index.js" "$committed"; then
    echo "check-dist: $committed is stale (differs from a fresh build)"; stale=1; continue
  fi
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
    { ! git ls-files --error-unmatch "$committed" >/dev/null 2>&1 || ! git diff --quiet HEAD -- "$committed"; }; then
    echo "check-dist: $committed is up to date on disk but not committed"; stale=1
  fi
done
if [ $stale -ne 0 ]; then
  echo "check-dist: run \`npm run build:actions\` and commit actions/*/dist"
  exit 1
fi
echo "check-dist: actions/*/dist matches the sources"
