#!/bin/bash
# Builds dhtnet_caller against a prefix holding OpenDHT 4.3.1, the pjproject fork and dhtnet
# (as /work/shared/peers/build/build-all.sh installs them), plus Debian's libsrtp2-dev and
# libopus-dev. dhtnet is a static library there, so its private dependencies (pjproject's
# static libs, gnutls, libupnp, natpmp, ...) come from `pkg-config --static`, as dhtnet's own
# tools get them through CMake.
#
#   PREFIX=/tmp/peers-build/prefix ./build.sh [OUT]   (OUT defaults to <repo>/target/peers/dhtnet_caller,
#                                                      which git ignores)
set -euo pipefail
: "${PREFIX:=/tmp/peers-build/prefix}"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-${CARGO_TARGET_DIR:-$HERE/../../../target}/peers/dhtnet_caller}
mkdir -p "$(dirname "$OUT")"
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
for pc in dhtnet opendht libpjproject; do
    pkg-config --exists $pc || { echo "pkg-config: $pc not found under $PREFIX" >&2; exit 1; }
done
DEFS="-DPJ_AUTOCONF=1 -DASIO_STANDALONE -DMSGPACK_NO_BOOST -DMSGPACK_DISABLE_LEGACY_NIL -DMSGPACK_DISABLE_LEGACY_CONVERT"
# libsrtp2 first: pjproject's bundled static libsrtp must not provide srtp_* for our code.
nice -n 10 ${CXX:-g++} -std=c++17 -O2 -g -Wall $DEFS \
    -I"$PREFIX/include" $(pkg-config --cflags dhtnet opendht) \
    -o "$OUT" "$HERE/dhtnet_caller.cpp" \
    -lsrtp2 -lopus \
    -L"$PREFIX/lib" -Wl,-rpath,"$PREFIX/lib" \
    $(pkg-config --static --libs dhtnet) \
    -lfmt -lpthread
echo "built $(readlink -f "$OUT")"
