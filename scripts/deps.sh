#!/bin/sh
# deps.sh [run] [build] [test] - install the Debian packages mxguard needs.
#
#   run    the run-time libraries and what the daemon reads (nftables,
#          tor-geoipdb, publicsuffix); creates the system user mxguard
#          that mxguard drops to (run_as = mxguard).
#   build  compiler, meson, ninja, pkg-config, the -dev packages, and what
#          `make deb` uses (debhelper, dpkg-dev, lintian).
#   test   what the tests start or call: Postfix, redis-server, dnsmasq,
#          swaks, pytest, clang and libFuzzer, strace, ...
#
# Several sets may be given; none means all three (what `make run` and
# `make test` use). `make install` asks only for run (and build when there
# is no build yet): it never installs an MTA, a Redis server or a test tool.
#
# Idempotent: packages already present are not touched, so a second run only
# asks dpkg-query and returns. Must run as root (or through sudo).
set -eu

RUN_PKGS="
  libevent-core-2.1-7 libsystemd0 libpcre2-8-0 libc-ares2 liblmdb0 libpsl5 zlib1g
  libnftables1 libmaxminddb0 libhiredis0.14 libcap2 libseccomp2 libjansson4
  nftables tor-geoipdb publicsuffix
"
BUILD_PKGS="
  gcc make meson ninja-build pkg-config clang-format
  libevent-dev libsystemd-dev libpcre2-dev libc-ares-dev liblmdb-dev libpsl-dev zlib1g-dev
  libnftables-dev libmaxminddb-dev libhiredis-dev libcap-dev libseccomp-dev libjansson-dev
  debhelper dpkg-dev lintian
"
TEST_PKGS="
  redis-server dnsmasq-base lmdb-utils
  clang libclang-rt-14-dev libfuzzer-14-dev
  postfix swaks openssl pflogsumm postgrey
  python3 python3-pytest prometheus
  iproute2 procps netcat-openbsd strace
"

want_run=0 want_build=0 want_test=0
[ $# -eq 0 ] && set -- run build test
for set_name in "$@"; do
    case "$set_name" in
    run) want_run=1 ;;
    build) want_build=1 ;;
    test) want_test=1 ;;
    *)
        echo "usage: deps.sh [run] [build] [test] (none: all three)" >&2
        exit 2
        ;;
    esac
done

PKGS=""
[ $want_run = 1 ] && PKGS="$PKGS $RUN_PKGS"
[ $want_build = 1 ] && PKGS="$PKGS $BUILD_PKGS"
[ $want_test = 1 ] && PKGS="$PKGS $TEST_PKGS"

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
    if [ $want_test = 1 ]; then
        # Postfix is used only as a test backend and a sink started by
        # mxguard's own scripts with their own configuration directories:
        # ask its package not to configure (and start) a system-wide mail
        # server. Only the test set installs it.
        echo "postfix postfix/main_mailer_type select No configuration" |
            $SUDO debconf-set-selections
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: all packages present ($*)"
fi

if [ $want_run = 1 ] && ! getent passwd mxguard >/dev/null; then
    echo "deps: creating system user mxguard"
    $SUDO useradd --system --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin mxguard
fi
