#!/bin/sh
# `make test-dockerhost`: the network-related test files on a "host that has run Docker" (issue 11), built
# in a network namespace of this script's own so that the machine's own network is never changed:
#   - docker0, a bridge holding 172.17.0.1/16 (its route takes Docker's default subnet);
#   - iptables (nft-backed) and ip6tables as dockerd 28 leaves them: filter FORWARD policy DROP, a
#     DOCKER-USER chain jumped to first, Docker's own docker0 rules and masquerade;
#   - br_netfilter, with bridge-nf-call-iptables/ip6tables on in the namespace.
# The test files then run inside it, as a user's `make test` would on such a host: every test daemon (and
# every namespace a test makes for itself) starts from there. nsenter --net rather than `ip netns exec`:
# the latter also remounts /sys, which hides the cgroup hierarchies the container tests read.
# Files: the arguments, or the network-related ones below. Not part of `make test`.
set -eu
cd "$(dirname "$0")/.."

NS="berth-dhsuite-$$"
NSFILE="/run/netns/$NS"
FILES="${*:-dist/test/e2e/network.test.js dist/test/e2e/network-links-ports.test.js \
dist/test/e2e/dockerhost.test.js dist/test/e2e/dockerhost-endpoint.test.js dist/test/e2e/dockerhost-lock.test.js \
dist/test/e2e/ipv6.test.js dist/test/e2e/compose.test.js addon/test/net.test.js}"

cleanup() {
  # berthd's bridge locks of this namespace are named by its inode (daemon/network/locks.ts).
  if [ -e "$NSFILE" ]; then
    ino=$(stat -c %i "$NSFILE")
    rm -rf "/run/lock/berth/netns-$ino"
  fi
  # The namespace takes its devices, addresses, routes and firewall tables with it.
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { nsenter --net="$NSFILE" -- "$@"; }

# br_netfilter's module is machine-wide; loaded only when it is not there (as on any Docker host).
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter

ip netns add "$NS"
nsx ip link set lo up
nsx ip link add docker0 type bridge
nsx ip addr add 172.17.0.1/16 dev docker0
nsx ip link set docker0 up
for f in bridge-nf-call-iptables bridge-nf-call-ip6tables; do
  [ "$(nsx cat /proc/sys/net/bridge/$f)" = 1 ] || nsx sh -c "echo 1 > /proc/sys/net/bridge/$f"
done

filter='*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT'
printf '%s\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n-A DOCKER -i docker0 -j RETURN\nCOMMIT\n' "$filter" \
  | nsx iptables-nft-restore -w 10
printf '%s\n' "$filter" | nsx ip6tables-nft-restore -w 10

echo "dockerhost-suite: namespace $NS (docker0 172.17.0.1/16, FORWARD policy DROP with DOCKER-USER, br_netfilter)"
nsx iptables-nft -S FORWARD | head -3
# Not exec: the trap removes the namespace when the tests are done.
nsx node --test --test-concurrency=1 --test-timeout=300000 $FILES
