// Named network namespaces (a file bind-mounted over /proc/thread-self/ns/net of a thread that made the
// namespace) and running a little code inside one. Whatever enters another namespace does so on a thread of
// its own that ends afterwards: the libuv pool thread that asked only waits for it, so no pool thread is
// ever left in a container's namespace, whatever fails.
#pragma once

#include <functional>
#include <string>

#include "net/netlink.h"
#include "util/status.h"

namespace berth {
namespace net {

// Runs fn on a new thread that has first joined the network namespace of the file `netns`; waits for it.
Status RunInNetns(const std::string& netns, const std::function<Status()>& fn);

// A netlink socket that works in `netns` (a namespace file), or in the caller's namespace when it is empty.
Status OpenSocket(const std::string& netns, Socket* out);

// Makes `dir` a mount point of its own with private propagation (as `ip netns` does with /run/netns), so
// namespace files mounted below it do not show up in containers' mount namespaces and keep them alive.
Status PrepareNetnsDir(const std::string& dir);

// Makes a new network namespace with its loopback up and bind-mounts it on `path` (created if missing).
// A namespace already mounted there is unmounted first.
Status CreateNetns(const std::string& path);

// Unmounts and removes a namespace file; one that is not there is not an error.
Status DeleteNetns(const std::string& path);

// Writes value to /proc/sys/<key> (key like "net/ipv4/ip_forward"), inside `netns` when it is not empty.
Status WriteSysctl(const std::string& netns, const std::string& key, const std::string& value);

}  // namespace net
}  // namespace berth
