#!/bin/bash
# Guest side of `make test-vm`: runs one suite's test files of the built checkout (test/vm/run.sh boots the
# guest with this script as its command).
#   boot        berthd starts and answers (test/vm/boot.vm.test.ts)
#   containers  cgroup v2 limits read back from the kernel's files; the container, network (DNS, links,
#               published ports) and OOM e2e tests
#   systemd     make install, the units, the systemd cgroup driver (systemd guests only)
set -u
cd "$(dirname "$0")/../.." || exit 1
export BERTH_VM_GUEST=1
# Under TCG a first start of berthd reads node, the addon and dist/ over 9p: 20-60 s, not the host's 1 s.
export BERTH_TEST_START_MS=120000
case "${1:-}" in
  boot) files=(dist/test/vm/boot.vm.test.js) ;;
  containers) files=(dist/test/vm/cgroup-v2.vm.test.js dist/test/e2e/containers.test.js dist/test/e2e/network.test.js dist/test/e2e/network-links-ports.test.js dist/test/e2e/oom.test.js) ;;
  systemd) export BERTH_VM_GUEST=systemd; files=(dist/test/vm/systemd.vm.test.js) ;;
  *) echo "usage: $0 boot|containers|systemd" >&2; exit 2 ;;
esac
exec node --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
