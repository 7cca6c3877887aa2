// The container's filesystem view, built by its init process inside its new mount namespace.
#pragma once

#include "spec.h"

// Before pivot_root: makes / rprivate, binds root.path onto itself (so it is a mount point even when
// berthd did not mount anything there), mounts every entry of s.mounts under it (targets resolved
// inside the root, symlinks included), creates the /dev nodes and links, creates the working directory,
// then pivot_roots into it and detaches the old root.
bool setup_rootfs(const Spec& s);

// A container in a user namespace of its own, called before setup_rootfs while the init still has the
// host's root uid (with capabilities only in its namespaces): does setup_rootfs's first two steps and
// opens (O_PATH) the root and the source of every bind mount, so that they are reached whatever the
// modes of the host directories above them; setup_rootfs then mounts from these descriptors. The init
// becomes the namespace's root (the range's first uid) right after, so that what it creates in the
// container's file systems is owned by the container's root.
bool preopen_rootfs(const Spec& s);

// After pivot_root (and after the sysctls, which need a writable /proc/sys): masks s.masked_paths,
// makes s.readonly_paths read-only, and remounts / read-only when root.readonly.
bool finish_rootfs(const Spec& s);
