#!/bin/bash
# Runs the command vm.sh wrote to /berth-vm/out/cmd (one word a line) in the checkout, its output on the
# console and in /berth-vm/out/output.log, and leaves its exit status in /berth-vm/out/rc: the host's
# only way to learn the result.
OUT=/berth-vm/out
cd "$(dirname "$0")/../.." || exit 1
mapfile -t cmd < "$OUT/cmd"
echo "berth-vm: running ${cmd[*]} on $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), PID 1 $(cat /proc/1/comm)"
"${cmd[@]}" 2>&1 | tee "$OUT/output.log"
rc=${PIPESTATUS[0]}
echo "berth-vm: exit status $rc"
echo "$rc" > "$OUT/rc"
sync
