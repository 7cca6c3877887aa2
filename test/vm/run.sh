#!/usr/bin/env bash
# `make test-vm`: the VM fixture's guests, one after another (the machine has 2 cores and each guest's one
# vCPU is a full host thread under TCG), each bounded in time, the whole within 20 minutes:
#   Debian 12's 6.1   plain init, cgroup v2   suites of SUITES_6_1
#   6.12              plain init, cgroup v2   containers (limits read back, container and network e2e)
#   6.12              systemd as PID 1        make install, units, the systemd cgroup driver
# Installs what it needs (qemu-system-x86, kmod, cpio, busybox-static) when missing, and fetches the kernel
# packages into build/vm-cache once (test/vm/vm.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

# Debian 12's 6.1 refuses overlayfs' `lowerdir+` only when the superblock is made, and says why only in its
# kernel log: the 6.1 guest runs the same container suite as 6.12 to prove the mount(2) fallback.
SUITES_6_1="${BERTH_VM_SUITES_6_1:-containers}"  # containers begins with what boot checks
SUITES_6_12="${BERTH_VM_SUITES_6_12:-containers}"  # containers begins with what boot checks

need=()
for p in qemu-system-x86 kmod cpio busybox-static xz-utils zstd; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "test-vm: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

OUT=build/vm-out
mkdir -p "$OUT"
started=$SECONDS
failed=()

guest() {  # series mode suite timeout
  local name="$1-$2-$3"
  echo "test-vm: $name"
  if BERTH_VM_TIMEOUT="$4" test/vm/vm.sh run "$1" "$2" "$OUT/$name" test/vm/suite.sh "$3"; then
    echo "test-vm: $name passed ($(grep -E '^# (pass|fail) ' "$OUT/$name/output.log" | tr '\n' ' '))"
  else
    echo "test-vm: $name FAILED; the guest's output is in $OUT/$name/output.log, its console in $OUT/$name/console.log"
    grep -E '^not ok|^# (pass|fail) ' "$OUT/$name/output.log" 2>/dev/null | head -n 40 || true
    failed+=("$name")
  fi
}

test/vm/vm.sh kernel 6.1 >/dev/null
test/vm/vm.sh kernel 6.12 >/dev/null
for s in $SUITES_6_1; do guest 6.1 plain "$s" 600; done
for s in $SUITES_6_12; do guest 6.12 plain "$s" 900; done
guest 6.12 systemd systemd 600

echo "test-vm: done in $((SECONDS - started)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test-vm: failed: ${failed[*]}"
  exit 1
fi
