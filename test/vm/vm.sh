#!/usr/bin/env bash
# The VM fixture: boots one of Debian's own kernel packages in QEMU and runs a command of this checkout
# in it, on cgroup v2, with this machine's root file system as the guest's root.
#
#   test/vm/vm.sh kernel SERIES          prints the path of the prepared kernel tree for SERIES (6.1, 6.12)
#   test/vm/vm.sh run SERIES MODE OUT SCRIPT [ARGS...]
#        MODE plain:   a small init mounts cgroup2 and runs `SCRIPT ARGS` (a path in this checkout)
#        MODE systemd: systemd is PID 1; a unit runs `SCRIPT ARGS` once multi-user is reached
#        OUT is a host directory shared writable with the guest (at /berth-vm/out): the script writes its
#        results there; the guest's exit status lands in OUT/rc and its console in OUT/console.log.
#
# Why it is built this way:
# - TCG, not KVM: these machines are nested guests and stock kernels do not boot under their /dev/kvm.
# - One vCPU: with two, a guest kernel died once in code patching (Oops: int3) under multi-threaded TCG.
# - No network device: the guest reaches nothing outside itself; the tests use loopback and the bridges
#   and veths they make.
# - The host's root, read-only over 9p, under a tmpfs overlay: node, the docker CLI, the built checkout and
#   systemd run unchanged, and nothing the guest writes reaches the host (except OUT).
# - The kernel's own modules (same package) are bind-mounted at /lib/modules/$(uname -r) so that the
#   guest's modprobe (bridge, veth, nf_tables …) finds them; the initramfs holds only what mounting the
#   root needs (9p, its virtio transport, overlay).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="$(readlink -f "$REPO/build/vm-cache")"  # a symlinked cache: the guest mounts by the real path
GUEST_MEM="${BERTH_VM_MEM:-2048}"

log() { echo "vm: $*" >&2; }

# The newest linux-image package of a series that apt knows: "6.1" → linux-image-6.1.0-N-amd64,
# "6.12" → linux-image-6.12.N+debNN-amd64 (plain -amd64 flavour; not cloud or rt).
package_for() {
  local series="$1" re
  case "$series" in
    6.1) re='^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
    6.12) re='^linux-image-6\.12\.[0-9]+\+deb[0-9]+-amd64$' ;;
    *) log "unknown kernel series $series (6.1 or 6.12)"; return 2 ;;
  esac
  apt-cache search --names-only "$re" | awk '{print $1}' | sort -V | tail -n 1
}

# Fetches and unpacks the kernel package (once), runs depmod on its modules and builds the initramfs.
# Prints the tree's directory; its kernel release is the directory's name.
prepare_kernel() {
  local series="$1" pkg kver dir glob
  case "$series" in 6.1) glob='6.1.0-*-amd64' ;; 6.12) glob='6.12.*-amd64' ;; *) glob='none' ;; esac
  # A series already prepared is used as it is: a later run must not depend on the mirror.
  dir="$(ls -d "$CACHE"/k/$glob 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$dir" ] || [ ! -f "$dir/initrd.img" ]; then
    pkg="$(package_for "$series")"
    [ -n "$pkg" ] || { log "apt knows no kernel package of series $series"; return 1; }
    kver="${pkg#linux-image-}"
    dir="$CACHE/k/$kver"
    mkdir -p "$CACHE/debs" "$CACHE/k"
    if ! ls "$CACHE/debs/${pkg}_"*.deb >/dev/null 2>&1; then
      log "downloading $pkg"
      (cd "$CACHE/debs" && apt-get download -q "$pkg" >&2 2>/dev/null)
    fi
    rm -rf "$dir.tmp"
    dpkg-deb -x "$(ls "$CACHE/debs/${pkg}_"*.deb | head -n 1)" "$dir.tmp"
    depmod -b "$dir.tmp" "$kver"
    build_initramfs "$dir.tmp" "$kver"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
  fi
  # The init script changed since the initramfs was made: make it again (the modules stay).
  [ "$HERE/init" -nt "$dir/initrd.img" ] && build_initramfs "$dir" "$(basename "$dir")"
  echo "$dir"
}

build_initramfs() {
  local dir="$1" kver="$2" ir="$1/initramfs"
  rm -rf "$ir"
  mkdir -p "$ir"/{bin,dev,proc,sys,newroot,lower,rw,modules}
  cp /bin/busybox "$ir/bin/busybox"
  ln -s busybox "$ir/bin/sh"
  cp "$HERE/init" "$ir/init"
  chmod 0755 "$ir/init"
  # Every module mounting the root needs, in load order, decompressed (busybox insmod reads plain .ko).
  local n=0 line path name
  : > "$ir/modules/order"
  while read -r line; do
    case "$line" in
      insmod\ *)
        path="${line#insmod }"; path="${path%% *}"
        name="$(printf '%02d' "$n")-$(basename "$path")"; name="${name%.xz}"; name="${name%.zst}"
        case "$path" in
          *.xz) xz -dc "$path" > "$ir/modules/$name" ;;
          *.zst) zstd -qdc "$path" > "$ir/modules/$name" ;;
          *) cp "$path" "$ir/modules/$name" ;;
        esac
        echo "$name" >> "$ir/modules/order"
        n=$((n + 1)) ;;
    esac
  done < <(modprobe -a -d "$dir" -S "$kver" --show-depends virtio_pci 9pnet_virtio 9p overlay | awk '!seen[$0]++')
  (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir/initrd.img"
}

# Boots the guest and waits for it to power off (bounded by BERTH_VM_TIMEOUT seconds).
run_guest() {
  local series="$1" mode="$2" out="$3" script="$4"; shift 4
  local dir kver
  dir="$(prepare_kernel "$series")"
  kver="$(basename "$dir")"
  mkdir -p "$out"
  rm -f "$out/rc" "$out/console.log"
  case "$script" in /*) ;; *) script="$REPO/$script" ;; esac
  [ -x "$script" ] || { log "$script is not an executable file"; return 2; }
  # The command, as the guest init runs it: one line per word, so that no quoting is lost on the way.
  printf '%s\n' "$script" "$@" > "$out/cmd"
  local append="console=ttyS0 panic=-1 quiet loglevel=4 berth.mode=$mode berth.kver=$kver berth.modules=$dir/lib/modules/$kver berth.repo=$REPO"
  append+=" systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
  log "booting $kver ($mode): $script $*"
  local started=$SECONDS status=0
  timeout --kill-after=10 "${BERTH_VM_TIMEOUT:-900}" qemu-system-x86_64 \
    -machine q35,accel=tcg -cpu max -smp 1 -m "$GUEST_MEM" \
    -nodefaults -no-user-config -display none -no-reboot -nic none \
    -serial "file:$out/console.log" \
    -kernel "$dir/boot/vmlinuz-$kver" -initrd "$dir/initrd.img" -append "$append" \
    -fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
    -fsdev local,id=out,path="$out",security_model=none,multidevs=remap \
    -device virtio-9p-pci,fsdev=out,mount_tag=out \
    -device virtio-rng-pci </dev/null >/dev/null 2>"$out/qemu.err" || status=$?
  log "$kver ($mode) powered off after $((SECONDS - started)) s"
  if [ "$status" -ne 0 ]; then
    log "qemu ended with $status (124: timed out); console tail:"
    tail -n 40 "$out/console.log" >&2 || true
    cat "$out/qemu.err" >&2 || true
    return 1
  fi
  if [ ! -f "$out/rc" ]; then
    log "the guest powered off without a result; console tail:"
    tail -n 60 "$out/console.log" >&2 || true
    return 1
  fi
  return "$(cat "$out/rc")"
}

case "${1:-}" in
  kernel) prepare_kernel "$2" ;;
  run) shift; run_guest "$@" ;;
  *) echo "usage: $0 kernel SERIES | run SERIES plain|systemd OUTDIR SCRIPT [ARGS...]" >&2; exit 2 ;;
esac
