#!/bin/sh
# deps.sh - install every Debian package mxguard needs to build, run and test.
#
# Idempotent: packages already present are not touched, so a second run only
# asks dpkg-query and returns. Also creates the unprivileged system user that
# mxguard drops to (run_as = mxguard). Must run as root (or through sudo).
set -eu

PKGS="
  gcc make meson ninja-build pkg-config clang-format
  libevent-dev libsystemd-dev libpcre2-dev libc-ares-dev liblmdb-dev libpsl-dev zlib1g-dev
  libnftables-dev nftables libmaxminddb-dev tor-geoipdb libhiredis-dev redis-server libcap-dev libseccomp-dev
  publicsuffix dnsmasq-base lmdb-utils
  clang libclang-rt-14-dev libfuzzer-14-dev
  postfix swaks openssl pflogsumm
  python3 python3-pytest prometheus
  iproute2 procps netcat-openbsd strace
"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
    "install ok installed") ;;
    *) missing="$missing $p" ;;
    esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

if [ -n "$missing" ]; then
    echo "deps: installing:$missing"
    # Postfix is used only as a test backend and a sink started by mxguard's
    # own scripts with their own configuration directories: ask its package
    # not to configure (and start) a system-wide mail server.
    echo "postfix postfix/main_mailer_type select No configuration" |
        $SUDO debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: all packages present"
fi

if ! getent passwd mxguard >/dev/null; then
    echo "deps: creating system user mxguard"
    $SUDO useradd --system --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin mxguard
fi
