#!/usr/bin/env bash
# Runs the whole suite (unit, real-kernel, end-to-end) and closes with one plain summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .flowctl-run
out=.flowctl-run/vitest.json
rm -f "$out"
pnpm exec vitest run --reporter=default --reporter=json --outputFile="$out" "$@"
rc=$?
if [ -f "$out" ]; then
  jq -r '"tests: \(.numPassedTests) passed, \(.numFailedTests) failed, \(.numPendingTests + .numTodoTests) skipped"' "$out"
fi
exit $rc
