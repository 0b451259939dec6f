#!/usr/bin/env bash
# Runs every benchmark under bench/ in turn; each rewrites its own section of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for b in bench/*.ts bench/*.sh; do
  [ -e "$b" ] || continue
  echo "== $b"
  case "$b" in
    *.ts) pnpm exec tsx --conditions=@flowctl/source "$b" || status=1 ;;
    *.sh) bash "$b" || status=1 ;;
  esac
done
exit $status
