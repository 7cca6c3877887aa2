#!/bin/bash
# PID 1 of a plain guest (after the initramfs's switch_root): the mounts a container host has (proc, sys,
# dev, cgroup2 alone, tmpfs /tmp and /run), then the command, then power off. No systemd, no services.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock
ip link set lo up
hostname berth-vm
/bin/bash "$(dirname "$0")/guest-run.sh"
sync
# PID 1 must not exit (that is a panic); a power-off ends the guest and qemu (-no-reboot).
busybox poweroff -f
sleep 5
echo o > /proc/sysrq-trigger
