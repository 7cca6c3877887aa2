#!/bin/bash
# Runs the command vm.sh wrote to /berth-vm/out/cmd (one word a line) in the checkout, its output on the
# console and in /berth-vm/out/output.log, and leaves its exit status in /berth-vm/out/rc: the host's
# only way to learn the result.
OUT=/berth-vm/out
cd "$(dirname "$0")/../.." || exit 1
mapfile -t cmd < "$OUT/cmd"
# Under systemd this runs as a unit of the boot transaction: wait (bounded) until the rest of the boot
# is done, so that the command sees a booted system.
if [ "$(cat /proc/1/comm)" = systemd ]; then
  for _ in $(seq 300); do
    [ "$(systemctl list-jobs --no-legend | grep -vc berth-vm-test)" = 0 ] && break
    sleep 1
  done
fi
echo "berth-vm: running ${cmd[*]} on $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), PID 1 $(cat /proc/1/comm)"
"${cmd[@]}" 2>&1 | tee "$OUT/output.log"
rc=${PIPESTATUS[0]}
echo "berth-vm: exit status $rc"
echo "$rc" > "$OUT/rc"
sync
