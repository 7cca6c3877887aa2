# berth: `make run` installs what is missing (berthd's own needs only), builds, and starts berthd on
# /run/berth.sock; `make test` adds the test dependencies and runs the whole suite; `make build` only builds.
SHELL := /bin/bash
NODE_GYP := node_modules/.bin/node-gyp
TSC := node_modules/.bin/tsc
SHIM_SRCS := $(wildcard addon/shim/*.cc) $(wildcard addon/common/*.cc)
SHIM_HDRS := $(wildcard addon/shim/*.h) $(wildcard addon/common/*.h)
ADDON_SRCS := $(wildcard addon/src/*.cc addon/src/*/*.cc addon/common/*.cc addon/src/*.h addon/src/*/*.h addon/common/*.h)
TS_SRCS := $(shell find daemon test bench -name '*.ts' 2>/dev/null)
# What berthd needs to build and run (compilers, node-gyp's python3, the shim's libraries, libdeflate for the
# addon's push compression, the `nft` tool), and what only the tests need on top. Both are installed without recommends: docker-compose recommends
# docker.io, and berth's set-up must never bring Docker Engine, containerd or runc onto the machine
# (test/unit/apt-packages.test.ts checks that with apt-get's simulation).
APT_RUN_PKGS := build-essential python3 nlohmann-json3-dev libseccomp-dev zlib1g-dev libdeflate-dev nftables iproute2
APT_TEST_PKGS := busybox-static gcc-multilib util-linux tmux python3-docker docker-registry apache2-utils docker-compose containernetworking-plugins socat

PREFIX ?= /usr/local

.PHONY: install all build run deps apt-deps apt-deps-test apt-list-run apt-list-test addon shim init ts fixtures test test-unit test-e2e test-vm test-dockerhost clean bench devices-bpf-test enosys-exec conformance

all: build

build: $(NPM_STAMP) addon shim init ts

# Installs whichever of the packages are missing.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
endef

apt-deps:
	$(call apt_install,$(APT_RUN_PKGS))

apt-deps-test: apt-deps
	$(call apt_install,$(APT_TEST_PKGS))

# The lists, for tests and scripts: `make -s apt-list-run`, `make -s apt-list-test`.
apt-list-run:
	@echo $(APT_RUN_PKGS)
apt-list-test:
	@echo $(APT_TEST_PKGS)

deps: apt-deps $(NPM_STAMP)

# npm ci runs once per lockfile change, under a lock: several builds started at once (tests, helpers,
# CI) must not wipe node_modules under each other.
NPM_STAMP := node_modules/.berth-installed
node_modules: $(NPM_STAMP)
$(NPM_STAMP): package-lock.json
	flock /tmp/berth-npm.lock sh -c '[ -f $(NPM_STAMP) ] && [ $(NPM_STAMP) -nt package-lock.json ] || { npm ci --no-audit --no-fund && touch $(NPM_STAMP); }'

addon: addon/build/Release/berth.node
addon/build/Release/berth.node: addon/binding.gyp $(ADDON_SRCS) | $(NPM_STAMP)
	cd addon && ../$(NODE_GYP) rebuild --silent --nodedir=$$(node -p "require('path').resolve(process.execPath,'../..')")

shim: build/berth-shim
build/berth-shim: $(SHIM_SRCS) $(SHIM_HDRS)
	@mkdir -p build
	g++ -std=c++17 -Os -Wall -Wextra -static -pthread -Iaddon/common -o $@ $(SHIM_SRCS) -lseccomp -lz

# berth-init: the small pid 1 of `docker run --init` (reaps zombies, forwards signals).
init: build/berth-init
build/berth-init: addon/init/init.c
	@mkdir -p build
	gcc -std=c11 -Os -Wall -Wextra -static -o $@ $<

# Probes run inside containers by the tests: static, for the host's ABI and for i386 (gcc -m32, from
# gcc-multilib), so that a test sees what a seccomp filter answers to 64- and 32-bit processes.
.PHONY: probes
probes: build/seccomp-probe build/seccomp-probe32
build/seccomp-probe: test/probes/seccomp-probe.c
	@mkdir -p build
	gcc -std=c11 -Os -Wall -Wextra -static -o $@ $<
build/seccomp-probe32: test/probes/seccomp-probe.c
	@mkdir -p build
	gcc -m32 -std=c11 -Os -Wall -Wextra -static -o $@ $<

# The cgroup v2 device filter against the real kernel (run by addon/test/devices-bpf.test.js).
DEVBPF_SRCS := addon/test/devices_bpf_test.cc addon/src/cgroup/devices_bpf.cc addon/src/cgroup/v2.cc \
  addon/src/cgroup/hierarchy.cc addon/src/util/file.cc
devices-bpf-test: build/devices-bpf-test
build/devices-bpf-test: $(DEVBPF_SRCS) $(wildcard addon/src/cgroup/*.h addon/src/util/*.h)
	@mkdir -p build
	g++ -std=c++17 -O1 -Wall -Wextra -Iaddon/src -o $@ $(DEVBPF_SRCS)

# A launcher that answers ENOSYS to the system calls it is given (test/e2e/kernel-fallbacks.test.ts starts
# berthd through it, as on a kernel older than this one).
enosys-exec: build/enosys-exec
build/enosys-exec: test/tools/enosys-exec.c
	@mkdir -p build
	gcc -std=c11 -O1 -Wall -Wextra -o $@ $< -lseccomp

ts: dist/.built
dist/.built: $(TS_SRCS) tsconfig.json | $(NPM_STAMP)
	$(TSC) -p tsconfig.json
	@touch $@

fixtures: build
	node dist/test/fixtures/make-images.js build/fixtures

run: apt-deps build
	./bin/berthd

test: apt-deps-test build fixtures devices-bpf-test enosys-exec probes
	node addon/shim/test/shim-smoke.js
	node --test --test-concurrency=1 --test-timeout=300000 dist/test/ addon/test/

# The network-related test files inside a namespace built like a host that has run Docker (docker0,
# FORWARD policy DROP with DOCKER-USER, br_netfilter): test/dockerhost-suite.sh. Not part of `make test`.
test-dockerhost: apt-deps-test build fixtures
	test/dockerhost-suite.sh

# Debian's own kernels (6.1, 6.12) in QEMU guests with cgroup v2, plain and with systemd as PID 1 (test/vm/).
# Installs qemu-system-x86 and fetches the kernel packages itself; about 15 minutes on 2 cores.
test-vm: build fixtures
	test/vm/run.sh

# docker-py's own integration suite against a temporary berthd (test/conformance/run.ts; docs/conformance.md).
# Not part of `make test`: it takes tens of minutes. DOCKER_PY_SRC=<checkout> uses that tree instead of a
# clone of docker-py at DOCKER_PY_TAG (7.1.0); FILES="api_exec_test.py …" runs only those files.
conformance: apt-deps-test build fixtures
	$(call apt_install,python3-paramiko python3-websocket)
	# In a network namespace of its own: docker-py's IPv6 tests switch on IPv6 forwarding, and a host's
	# sysctls and firewall are not the suite's to change. The namespace and all in it go when the run ends.
	unshare --net sh -c 'ip link set lo up && exec node dist/test/conformance/run.js'

bench: build fixtures
	node dist/bench/run-true.js

# Installs the built tree under $(PREFIX)/lib/berth, `berthd` on the PATH, and the systemd units.
install: build
	mkdir -p $(PREFIX)/lib/berth $(PREFIX)/bin /etc/berth
	tar -c --exclude=build/vm-cache --exclude=build/vm-out package.json bin dist build node_modules api-spec | tar -x -C $(PREFIX)/lib/berth/
	mkdir -p $(PREFIX)/lib/berth/daemon/state $(PREFIX)/lib/berth/addon/build/Release
	cp -a daemon/state/migrations $(PREFIX)/lib/berth/daemon/state/
	cp addon/build/Release/berth.node $(PREFIX)/lib/berth/addon/build/Release/
	ln -sf $(PREFIX)/lib/berth/bin/berthd $(PREFIX)/bin/berthd
	[ -f /etc/berth/daemon.json ] || echo '{}' > /etc/berth/daemon.json
	install -m 0644 systemd/berth.service systemd/berth.socket /etc/systemd/system/ 2>/dev/null || true

clean:
	rm -rf dist build addon/build
