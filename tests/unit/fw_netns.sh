#!/bin/sh
# fw_netns.sh - run test_fw (the nftables blocking test) inside a network
# namespace of its own, so that its table, its sets and its loopback traffic
# never touch the host's firewall. Exit 77 (meson: skipped) with the reason
# when that is not possible here.
#
# usage: fw_netns.sh /path/to/test_fw
set -u
bin=$1

if [ "$(id -u)" != 0 ]; then
	echo "fw: skipped: needs root (a network namespace and CAP_NET_ADMIN in it)"
	exit 77
fi
for p in unshare ip nft; do
	if ! command -v $p >/dev/null 2>&1; then
		echo "fw: skipped: $p is not installed (util-linux, iproute2, nftables)"
		exit 77
	fi
done
if ! why=$(unshare -n true 2>&1); then
	echo "fw: skipped: cannot create a network namespace: $why"
	exit 77
fi

# Inside: loopback up, and two IPv6 addresses on lo to block one of and
# connect from the other (::1 alone gives nothing to compare with).
exec unshare -n sh -c '
	ip link set lo up &&
	ip -6 addr add fd00:6::2/128 dev lo nodad &&
	ip -6 addr add fd00:6::3/128 dev lo nodad &&
	MXG_FW_NETNS=1 exec "$0"' "$bin"
