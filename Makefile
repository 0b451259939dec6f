# flowctl build. Every target installs what it needs, so `make test` and `make demo` work as the
# first command on a fresh Debian machine (as root).
SHELL := /bin/bash
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:

APT_PKGS := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config iproute2 \
            protobuf-compiler jq dnsmasq-base iperf3 tcpdump ethtool time curl procps python3 g++ make prometheus openssl \
            libprotobuf-dev graphviz chromium iodine nmap hping3 nginx-light apache2-utils wrk nftables
PNPM_VERSION := 9.15.9
STAMP := .flowctl-run/stamps

.PHONY: deps apt pnpm node_modules build bpf addon ts typecheck proto test test-unit bench demo demo-up demo-down clean

deps: apt pnpm node_modules

apt:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

pnpm:
	@command -v pnpm >/dev/null 2>&1 && [ "$$(pnpm --version)" = "$(PNPM_VERSION)" ] || \
	  { echo "deps: installing pnpm $(PNPM_VERSION)"; npm install -g --silent pnpm@$(PNPM_VERSION) >/dev/null 2>&1; }

node_modules: $(STAMP)/node_modules
$(STAMP)/node_modules: pnpm-lock.yaml package.json $(wildcard */package.json packages/*/package.json) | pnpm
	@mkdir -p $(STAMP)
	pnpm install --frozen-lockfile --reporter=silent
	@touch $@

proto: node_modules
	./scripts/gen-proto.sh

bpf: apt
	@$(MAKE) -s -C bpf

addon: node_modules bpf
	@if [ -f addon/binding.gyp ]; then cd addon && pnpm run --silent build:native; fi

ts: node_modules
	pnpm exec tsc -b

build: deps bpf addon ts

# Tests, their helpers and benchmarks: `ts` builds only what ships. No output, so it is quick.
typecheck: node_modules
	pnpm exec tsc -p tsconfig.test.json
	pnpm exec tsc -p tsconfig.test-dom.json

test: build typecheck
	./scripts/run-tests.sh

bench: build
	./scripts/run-bench.sh

# `make demo TLS=1`: mutual TLS end to end with a throw-away CA.
demo: build
	./scripts/demo.sh run $(if $(TLS),--tls)

demo-up: build
	./scripts/demo.sh up $(if $(TLS),--tls)

demo-down:
	./scripts/demo.sh down

clean:
	rm -rf .flowctl-run packages/*/dist addon/dist addon/build bpf/.output
	find . -name '*.tsbuildinfo' -not -path './node_modules/*' -delete

.PHONY: bpf-verify
bpf-verify: bpf
	@$(MAKE) -s -C bpf verify
