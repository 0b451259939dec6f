#!/usr/bin/env bash
# Prints the path of the real Hubble CLI used by the interop tests and the demo, looked up in this
# order: $HUBBLE, `hubble` on PATH, ../shared/tools/hubble beside the clone. Exits 1 when none is found.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${HUBBLE:-}" ]; then
  [ -x "$HUBBLE" ] || { echo "find-hubble: HUBBLE=$HUBBLE is not an executable file" >&2; exit 1; }
  echo "$HUBBLE"
elif command -v hubble >/dev/null 2>&1; then
  command -v hubble
elif [ -x "$root/../shared/tools/hubble" ]; then
  (cd "$root/../shared/tools" && echo "$(pwd)/hubble")
else
  exit 1
fi
