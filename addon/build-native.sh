#!/usr/bin/env bash
# Builds the addon (offline: headers from the node installation, never downloaded) and the test
# BPF objects. Incremental: node-gyp configure runs only when build/ is missing or binding.gyp changed.
set -euo pipefail
cd "$(dirname "$0")"
nodedir="$(dirname "$(dirname "$(command -v node)")")"
[ -f "$nodedir/include/node/node_api.h" ] || nodedir=/usr
gyp=(pnpm exec node-gyp --nodedir="$nodedir" --loglevel=warn)
if [ ! -f build/Makefile ] || [ binding.gyp -nt build/Makefile ]; then "${gyp[@]}" configure >/dev/null; fi
"${gyp[@]}" build -j 2 >/dev/null

# Test and benchmark BPF objects: uapi headers + libbpf's bpf_helpers.h, no vmlinux.h needed.
mkdir -p build/bpf
arch_inc="/usr/include/$(uname -m)-linux-gnu"
for src in test/bpf/*.bpf.c; do
  obj="build/bpf/$(basename "${src%.c}").o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
    clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 -I"$arch_inc" -c "$src" -o "$obj"
  fi
done
