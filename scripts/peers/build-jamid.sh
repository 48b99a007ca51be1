#!/bin/bash
# build-jamid.sh OUT_DIR -- build the whole Jami daemon 16.0.0 (jamid, D-Bus, video) as a test peer.
#
# Test peer only, never part of the product. Run as root on Debian 12 (bookworm); idempotent
# (each finished stage leaves OUT_DIR/stamps/STAGE; delete a stamp, or OUT_DIR, to redo it).
#
# Why a Debian 13 (trixie) root: bookworm is too old for what daemon 16.0.0 needs (FFmpeg >= 6,
# libgit2 >= 1.8, sdbus-c++ 2.x, msgpack-cxx 7, ...; see shared/peers/README.md). So:
#   1. debootstrap trixie into OUT_DIR/root (only Debian's archive is used);
#   2. install trixie's -dev packages inside it (chroot);
#   3. fetch, with Debian's own deb-src (sid) and cargo (crates.io), what trixie lacks:
#      simdutf (sid's source package) and the yffi 0.27.2 crate (libyrs, crates.io);
#   4. build inside the chroot, into /opt/jami (= OUT_DIR/root/opt/jami on the host), from the
#      archives in shared/peers: pjproject fork 8fc165b8, OpenDHT 4.3.1, dhtnet 11f916f2,
#      jami-daemon 16.0.0 (CMake, JAMI_DBUS=ON, JAMI_VIDEO=ON, no contrib, no client);
#   5. write OUT_DIR/bin/jamid: a wrapper that runs the chroot-built jamid on the *host* with
#      trixie's dynamic loader and libraries (no chroot at run time, so the harness's paths,
#      network namespace, D-Bus and PulseAudio sockets work unchanged).
#
# Use with the interop harness:  JAMID_BIN=OUT_DIR/bin/jamid  (JAMID_LD_LIBRARY_PATH not needed)
#
# Env: PEERS_SRC (default: <repo>/../shared/peers), DEBIAN_MIRROR (default http://deb.debian.org/debian),
#      JOBS (default 2; builds run under nice -n 10).
# Logs: OUT_DIR/logs/<stage>.log, stage wall times in OUT_DIR/logs/times.txt.
# Patches (each documented in its header) live in scripts/peers/jamid/.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PATCHES=$HERE/jamid
PEERS_SRC=${PEERS_SRC:-$(cd "$REPO/.." && pwd)/shared/peers}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
JOBS=${JOBS:-2}
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
ROOT=$OUT/root
LOGS=$OUT/logs
STAMPS=$OUT/stamps
PREFIX=/opt/jami            # inside the chroot; $ROOT$PREFIX on the host
mkdir -p "$LOGS" "$STAMPS" "$OUT/bin"

DAEMON_TGZ=$PEERS_SRC/jami-daemon-16.0.0-4495c3fbc4.tar.gz
OPENDHT_TGZ=$PEERS_SRC/opendht-4.3.1.tar.gz
DHTNET_TGZ=$PEERS_SRC/dhtnet-11f916f2.tar.gz
PJ_TGZ=$PEERS_SRC/pjproject-sfl-8fc165b8.tar.gz
for f in "$DAEMON_TGZ" "$OPENDHT_TGZ" "$DHTNET_TGZ" "$PJ_TGZ"; do
    [ -f "$f" ] || { echo "missing $f (set PEERS_SRC)" >&2; exit 2; }
done

log() { echo "[build-jamid $(date +%T)] $*"; }

# ---------------------------------------------------------------- chroot mounts (undone on exit)
MOUNTED=()
mount_root() {
    local m
    for m in proc dev dev/pts; do
        mkdir -p "$ROOT/$m"
        if ! mountpoint -q "$ROOT/$m"; then
            case $m in
                proc) mount -t proc proc "$ROOT/proc" ;;
                dev) mount --bind /dev "$ROOT/dev" ;;
                dev/pts) mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts" ;;
            esac
            MOUNTED=("$ROOT/$m" "${MOUNTED[@]}")
        fi
    done
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"   # apt and cargo inside the chroot
    # cargo in the chroot trusts what the host trusts (this host may reach crates.io through a
    # TLS proxy whose CA is only in the host's bundle)
    mkdir -p "$ROOT/build"
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/build/host-ca-certificates.crt"
}
umount_root() {
    local m
    for m in "${MOUNTED[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    MOUNTED=()
}
trap umount_root EXIT

# Run a bash script (stdin) inside the chroot with a clean environment.
inroot() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive CARGO_HOME=/build/cargo-home \
        CARGO_HTTP_CAINFO=/build/host-ca-certificates.crt \
        PREFIX=$PREFIX JOBS=$JOBS JAMI_DATADIR_HOST="${JAMI_DATADIR_HOST:-}" \
        PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig CMAKE_PREFIX_PATH=$PREFIX \
        /bin/bash -euo pipefail -c "$(printf '%s\n' "$INROOT_PRELUDE" "$(cat)")"
}
# shell functions available to every script run by inroot
INROOT_PRELUDE='
# apply_patches FILE...: apply each -p1 patch in the current dir unless already applied; fail if neither
apply_patches() {
    local p
    for p in "$@"; do
        [ -e "$p" ] || continue
        if patch -p1 -R -s -f --dry-run < "$p" >/dev/null 2>&1; then echo "already applied: $p"
        else patch -p1 -N -f < "$p"; fi
    done
}
'

# stage NAME FUNCTION: run once, log to logs/NAME.log, record wall time.
stage() {
    local name=$1 fn=$2 t0 rc
    if [ -e "$STAMPS/$name" ]; then log "$name: done already ($(cat "$STAMPS/$name"))"; return 0; fi
    log "$name: start (log: $LOGS/$name.log)"
    t0=$(date +%s)
    set +e
    ( set -e; $fn ) > "$LOGS/$name.log" 2>&1
    rc=$?
    set -e
    local dt=$(( $(date +%s) - t0 ))
    echo "$name ${dt}s rc=$rc $(date -Is)" >> "$LOGS/times.txt"
    if [ $rc -ne 0 ]; then
        log "$name: FAILED after ${dt}s, last lines of $LOGS/$name.log:"
        tail -n 30 "$LOGS/$name.log" >&2
        exit 1
    fi
    echo "${dt}s $(date -Is)" > "$STAMPS/$name"
    log "$name: ok in ${dt}s"
}

# ---------------------------------------------------------------- 1. trixie root
s_debootstrap() {
    command -v debootstrap >/dev/null || {
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap
    }
    if [ -x "$ROOT/usr/bin/apt-get" ] && [ -e "$ROOT/etc/debian_version" ]; then
        echo "trixie root already there"; return 0
    fi
    rm -rf "$ROOT"
    nice -n 10 debootstrap --variant=minbase trixie "$ROOT" "$MIRROR"
}

# ---------------------------------------------------------------- 2. trixie packages
TRIXIE_PKGS="build-essential cmake pkg-config ca-certificates xz-utils patch file dpkg-dev
 libgnutls28-dev nettle-dev libargon2-dev libmsgpack-cxx-dev libfmt-dev libasio-dev libjsoncpp-dev
 libssl-dev libupnp-dev libnatpmp-dev libyaml-cpp-dev uuid-dev libsystemd-dev libunistring-dev
 librestinio-dev libllhttp-dev libhttp-parser-dev libsecp256k1-dev libgit2-dev
 libavformat-dev libavdevice-dev libavfilter-dev libavcodec-dev libswresample-dev libswscale-dev
 libavutil-dev libva-dev libvdpau-dev libspeexdsp-dev libarchive-dev libudev-dev libpulse-dev
 libasound2-dev libsdbus-c++-dev libsdbus-c++-bin cargo rustc cbindgen"
s_packages() {
    cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR trixie main
deb $MIRROR trixie-updates main
# sources only (simdutf is not in trixie); never binaries from sid. The sid Release file of
# the mirror may be expired, hence check-valid-until=no (signatures are still checked).
deb-src [check-valid-until=no] $MIRROR sid main
EOF
    # keep installed packages' docs out; not needed
    inroot <<EOF
apt-get update
apt-get install -y --no-install-recommends $(echo $TRIXIE_PKGS)
apt-get clean
EOF
}

# ---------------------------------------------------------------- 3. sources
s_sources() {
    rm -rf "$ROOT/build/src"
    mkdir -p "$ROOT/build/src" "$ROOT/build/dl"
    for f in "$DAEMON_TGZ" "$OPENDHT_TGZ" "$DHTNET_TGZ" "$PJ_TGZ"; do
        tar xzf "$f" -C "$ROOT/build/src"
    done
    inroot <<'EOF'
cd /build/dl
# Upstream tarballs of Debian's (sid) source packages: only the .orig tarball is used.
# apt-get source may exit non-zero when a .dsc/.debian part is missing on the mirror.
# simdutf 8.2.0 (daemon: >= 7.5.0, pins 8.0.0); this mirror serves that version's orig tarball
# (not the newest sid version's), and only the orig tarball: the .dsc/.debian parts are 404.
if ! echo "1af6653e1f55f4e1c0f8cd6528cbbf4c  simdutf_8.2.0.orig.tar.xz" | md5sum -c --quiet 2>/dev/null; then
    apt-get source --download-only simdutf=8.2.0-1 || true
    echo "1af6653e1f55f4e1c0f8cd6528cbbf4c  simdutf_8.2.0.orig.tar.xz" | md5sum -c
fi
ls -l
cd /build/src
rm -rf simdutf
mkdir simdutf
tar xf /build/dl/$(cd /build/dl; ls simdutf_8.2.0.orig.tar.xz) -C simdutf --strip-components=1
ls /build/src
EOF
}

# ---------------------------------------------------------------- 4. builds
s_simdutf() {
    inroot <<'EOF'
cd /build/src/simdutf
rm -rf build
cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$PREFIX -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DSIMDUTF_TESTS=OFF -DSIMDUTF_TOOLS=OFF -DSIMDUTF_BENCHMARKS=OFF -DSIMDUTF_ICONV=OFF -DBUILD_TESTING=OFF
nice -n 10 make -C build -j$JOBS
make -C build install
EOF
}

s_restinio() {
    inroot <<'EOF'
# RESTinio: Jami pins 0.7.9 (llhttp-based); Debian has only 0.6.19 (http_parser-based). Use a
# copy of trixie's 0.6.19 headers in $PREFIX/include, with
#  - <http_parser.h> = scripts/peers/jamid/http_parser-llhttp-shim.h (see its header for why);
#  - common_types.hpp: uses RESTINIO_NODISCARD without including compiler_features.hpp (0.6.x bug).
rm -rf $PREFIX/include/restinio
mkdir -p $PREFIX/include
cp -a /usr/include/restinio $PREFIX/include/
grep -q 'restinio/compiler_features.hpp' $PREFIX/include/restinio/common_types.hpp ||
  sed -i 's|#include <restinio/asio_include.hpp>|#include <restinio/compiler_features.hpp>\n#include <restinio/asio_include.hpp>|' \
    $PREFIX/include/restinio/common_types.hpp
grep -q 'restinio/compiler_features.hpp' $PREFIX/include/restinio/common_types.hpp
install -m644 /build/patches/http_parser-llhttp-shim.h $PREFIX/include/http_parser.h
EOF
}

s_yffi() {
    inroot <<'EOF'
# libyrs (y-crdt C FFI) from the crates.io package yffi 0.27.2 (Jami: y-crdt 03e14a02, "yrs >= 0.27",
# pkg-config version 0.27.2). Built exactly as its Cargo.lock pins (--locked), vendored so that
# Jami's own patch contrib/src/yffi/0001-avoid-if-let-guard.patch can be applied to yrs (trixie's
# rustc 1.85 has no if-let guards). The header is generated with cbindgen from the crate's
# cbindgen.toml (the crate does not ship tests-ffi/include/libyrs.h).
mkdir -p /build/src/yffi-fetch/src && cd /build/src/yffi-fetch
cat > Cargo.toml <<'T'
[package]
name = "yffi-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
yffi = "=0.27.2"
T
touch src/lib.rs
cargo fetch
src=$(ls -d $CARGO_HOME/registry/src/*/yffi-0.27.2 | head -1)
rm -rf /build/src/yffi && cp -a "$src" /build/src/yffi && cd /build/src/yffi
cargo vendor --locked vendor > vendor-config.toml
patch -d vendor -p1 < /build/src/jami-daemon-4495c3fbc4/contrib/src/yffi/0001-avoid-if-let-guard.patch
# the vendored yrs was edited: drop its per-file checksums (package checksum kept)
python3 - <<'P' 2>/dev/null || sed -i 's/"files":{[^}]*}/"files":{}/' vendor/yrs/.cargo-checksum.json
import json; p="vendor/yrs/.cargo-checksum.json"; d=json.load(open(p)); d["files"]={}; json.dump(d,open(p,"w"))
P
mkdir -p .cargo && cp vendor-config.toml .cargo/config.toml
nice -n 10 cargo build --release --locked --offline -j $JOBS --lib
cbindgen --config cbindgen.toml --lang c --output libyrs.h .
mkdir -p $PREFIX/lib/pkgconfig $PREFIX/include
install -m644 target/release/libyrs.a $PREFIX/lib/libyrs.a
install -m644 libyrs.h $PREFIX/include/libyrs.h
sed -e "s|@PREFIX@|$PREFIX|g" -e 's|@VERSION@|0.27.2|g' -e 's|@PRIVATE_LIBS@|-lpthread -ldl -lm|g' \
  /build/src/jami-daemon-4495c3fbc4/contrib/src/yffi/yrs.pc.in > $PREFIX/lib/pkgconfig/yrs.pc
EOF
}

s_pjproject() {
    inroot <<'EOF'
cd /build/src/pjproject-8fc165b8
apply_patches /build/patches/pjproject-*.patch
# Exactly Jami's options (jami-daemon contrib/src/pjproject/rules.mak, Linux: + --enable-epoll);
# Jami applies no pjproject patch on Linux.
make distclean >/dev/null 2>&1 || true
EXCLUDE_APP=1 ./aconfigure --prefix=$PREFIX --disable-sound --enable-video --enable-ext-sound \
  --disable-android-mediacodec --disable-speex-aec --disable-g711-codec --disable-l16-codec \
  --disable-gsm-codec --disable-g722-codec --disable-g7221-codec --disable-speex-codec \
  --disable-ilbc-codec --disable-opencore-amr --disable-silk --disable-sdl --disable-ffmpeg \
  --disable-v4l2 --disable-openh264 --disable-resample --disable-libwebrtc --with-gnutls=/usr \
  --enable-epoll CFLAGS="-O2 -fPIC" CXXFLAGS="-O2 -fPIC"
EXCLUDE_APP=1 nice -n 10 make -j$JOBS dep
EXCLUDE_APP=1 nice -n 10 make -j$JOBS
EXCLUDE_APP=1 make install
# as dhtnet's dependencies/build.py does: merge Libs.private into Libs for the static pj libs
sh /build/src/dhtnet-11f916f2/dependencies/pkg-static.sh $PREFIX/lib/pkgconfig/libpjproject.pc || true
cat $PREFIX/lib/pkgconfig/libpjproject.pc
EOF
}

s_opendht() {
    inroot <<'EOF'
cd /build/src/opendht-4.3.1
# Jami's options (contrib/src/opendht/rules.mak), shared library; RESTinio 0.6.19 (+ shim) from
# $PREFIX/include (stage 05-restinio) instead of 0.7.9
rm -rf build
cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$PREFIX -DCMAKE_PREFIX_PATH=$PREFIX -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_RPATH=$PREFIX/lib -DBUILD_SHARED_LIBS=ON -DCMAKE_CXX_STANDARD=20 \
  -DBUILD_TESTING=OFF -DOPENDHT_DOCUMENTATION=OFF -DOPENDHT_PROXY_CLIENT=ON -DOPENDHT_PROXY_SERVER=ON \
  -DOPENDHT_PUSH_NOTIFICATIONS=ON -DOPENDHT_IO_URING=OFF -DOPENDHT_TOOLS=OFF -DOPENDHT_PYTHON=OFF \
  -DOPENDHT_C=OFF -DOPENDHT_DOWNLOAD_DEPS=OFF
nice -n 10 make -C build -j$JOBS
make -C build install
EOF
}

s_dhtnet() {
    inroot <<'EOF'
cd /build/src/dhtnet-11f916f2
# Jami's options (contrib/src/dhtnet/rules.mak), shared library
rm -rf build
cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$PREFIX -DCMAKE_PREFIX_PATH=$PREFIX -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_RPATH=$PREFIX/lib -DBUILD_SHARED_LIBS=ON -DCMAKE_CXX_STANDARD=20 \
  -DBUILD_BENCHMARKS=OFF -DBUILD_TOOLS=OFF -DBUILD_TESTING=OFF -DBUILD_DEPENDENCIES=OFF -DBUILD_EXAMPLE=OFF
nice -n 10 make -C build -j$JOBS
make -C build install
EOF
}

s_daemon() {
    inroot <<'EOF'
cd /build/src/jami-daemon-4495c3fbc4
apply_patches /build/patches/daemon-*.patch
rm -rf build
cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$PREFIX -DCMAKE_PREFIX_PATH=$PREFIX -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_RPATH=$PREFIX/lib -DBUILD_CONTRIB=OFF -DJAMI_DBUS=ON -DJAMI_VIDEO=ON \
  -DJAMI_VIDEO_ACCEL=ON -DJAMI_PLUGIN=ON -DBUILD_TESTING=OFF -DJAMI_DATADIR=$JAMI_DATADIR_HOST \
  -DCMAKE_CXX_STANDARD_LIBRARIES=-lz
# (-lz: archiver.cpp calls zlib directly but CMakeLists.txt does not link it; Jami's contrib
#  static libraries bring it in, Debian's shared ones only indirectly, which ld refuses)
nice -n 10 make -C build -j$JOBS
make -C build install
EOF
}

# ---------------------------------------------------------------- 5. host wrapper
s_wrapper() {
    local bin=$ROOT$PREFIX/libexec/jamid
    [ -x "$bin" ] || { echo "no $bin"; return 1; }
    local ma=x86_64-linux-gnu
    # Library dirs reached through absolute symlinks (Debian alternatives, e.g. libblas.so.3 ->
    # /etc/alternatives/... -> /usr/lib/$ma/blas/) would resolve to the *host's* files: put the
    # root's targets first.
    local alt d l t
    alt=$(find "$ROOT/usr/lib/$ma" -maxdepth 1 -type l -lname '/*' -name '*.so*' | while read -r l; do
            t=$(chroot "$ROOT" readlink -f "${l#"$ROOT"}") && [ -e "$ROOT$t" ] && dirname "$t"
          done | sort -u | grep -vx "/usr/lib/$ma" || true)
    local libpath="$ROOT$PREFIX/lib"
    for d in $alt; do libpath="$libpath:$ROOT$d"; done
    libpath="$libpath:$ROOT/usr/lib/$ma:$ROOT/usr/lib/$ma/pulseaudio:$ROOT/usr/lib"
    echo "library path: $libpath"
    cat > "$OUT/bin/jamid.tmp" <<EOF
#!/bin/sh
# Generated by scripts/peers/build-jamid.sh: runs jamid 16.0.0 (built in the trixie root
# $ROOT) on this host with trixie's own dynamic loader and libraries.
# /proc/PID/cmdline of the process contains this script's path (--argv0), as the harness expects.
R='$ROOT'
# glibc 2.41 must not load bookworm's gconv modules; nor use the host's ld.so.cache (--inhibit-cache).
GCONV_PATH="\$R/usr/lib/$ma/gconv"; export GCONV_PATH
LIBVA_DRIVERS_PATH="\$R/usr/lib/$ma/dri"; export LIBVA_DRIVERS_PATH
exec "\$R/lib64/ld-linux-x86-64.so.2" --inhibit-cache --argv0 "\$0" \\
    --library-path '$libpath' \\
    "\$R$PREFIX/libexec/jamid" "\$@"
EOF
    chmod 755 "$OUT/bin/jamid.tmp"
    mv "$OUT/bin/jamid.tmp" "$OUT/bin/jamid"
    # smoke test: does it start and resolve all libraries?
    "$OUT/bin/jamid" --help 2>&1 | head -20 || true
    local deps; deps=$("$ROOT/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$libpath" --list "$bin")
    if echo "$deps" | grep -i 'not found'; then return 1; fi
    # every library must really be the root's (host paths = bookworm's libraries)
    local bad=0
    for l in $(echo "$deps" | awk '$2 == "=>" {print $3}'); do
        case $(readlink -f "$l") in "$ROOT"/*) ;; *) echo "outside the root: $l -> $(readlink -f "$l")"; bad=1 ;; esac
    done
    [ $bad = 0 ] || return 1
    echo "$(echo "$deps" | wc -l) libraries, all from $ROOT"
    echo "wrapper ok: $OUT/bin/jamid"
}

# ringtones etc.: the host path, since jamid runs on the host (not in the chroot)
JAMI_DATADIR_HOST=$ROOT$PREFIX/share/jami

T0=$(date +%s)
stage 01-debootstrap s_debootstrap
mount_root
rm -rf "$ROOT/build/patches" && cp -a "$PATCHES" "$ROOT/build/patches"   # scripts/peers/jamid/
stage 02-packages s_packages
stage 03-sources s_sources
stage 04-simdutf s_simdutf
stage 05-restinio s_restinio
stage 06-yffi s_yffi
stage 07-pjproject s_pjproject
stage 08-opendht s_opendht
stage 09-dhtnet s_dhtnet
stage 10-daemon s_daemon
stage 11-wrapper s_wrapper
umount_root
log "all stages done in $(( $(date +%s) - T0 ))s this run; $(du -sh "$OUT" | cut -f1) in $OUT"
log "use: JAMID_BIN=$OUT/bin/jamid /work/shared/interop/jamid-harness.py ..."
