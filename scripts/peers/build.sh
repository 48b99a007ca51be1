#!/usr/bin/env bash
# The build behind scripts/build-peers (run it through that script, which caches): OpenDHT
# 4.3.1 with its Python bindings, the pjproject fork, dhtnet with its tools, and the dhtnet
# caller, into $BUILD_DIR/prefix. Adapted from ../shared/peers/build (its README says why
# each piece beyond Debian bookworm is needed). Needs root; reaches only Debian's archive and
# PyPI.
set -euxo pipefail
: "${BUILD_DIR:?}" "${SHARED:?}" "${ROOT:?}"
here=$(cd "$(dirname "$0")" && pwd)
P=$BUILD_DIR/prefix
W=$BUILD_DIR/work
mkdir -p "$P/lib/pkgconfig" "$P/include" "$P/bin" "$W/src" "$W/debs"
export PKG_CONFIG_PATH=$P/lib/pkgconfig CMAKE_PREFIX_PATH=$P
seconds() { echo "$1 built in $(($(date +%s) - $2)) s"; }

# 1. Debian bookworm packages: the libraries dhtnet and OpenDHT link, Cython for the bindings,
#    libsrtp2/libopus for the caller's media.
export DEBIAN_FRONTEND=noninteractive
packages=(build-essential cmake pkg-config libgnutls28-dev nettle-dev libargon2-dev
    libmsgpack-cxx-dev libfmt-dev libasio-dev libjsoncpp-dev libreadline-dev libssl-dev
    libupnp-dev libnatpmp-dev libyaml-cpp-dev uuid-dev libsystemd-dev libunistring-dev
    python3-pip python3-dev python3-setuptools cython3 libsrtp2-dev libopus-dev openssl)
missing=()
for package in "${packages[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" = installed ] || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. Upstream tarballs of simdutf 8.2.0 and msgpack-cxx 7.0.0 (bookworm's 4.1 cannot pack time
#    points without Boost), from Debian's trixie/sid source packages; only the .orig tarballs
#    are needed (the mirror's .dsc may 404, hence `|| true` and the checksums).
sources=$W/peers-src.sources
cat >"$sources" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_src=(-o Dir::Etc::sourcelist="$sources" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
    -o Dir::State::lists="$W/apt-lists" -o Dir::Cache="$W/apt-cache")
mkdir -p "$W/apt-lists/partial" "$W/apt-cache/archives/partial"
apt-get "${apt_src[@]}" update -q
cd "$W/debs"
apt-get "${apt_src[@]}" source --download-only simdutf=8.2.0-1 || true
apt-get "${apt_src[@]}" source --download-only msgpack-cxx=7.0.0-1 || true
echo "1af6653e1f55f4e1c0f8cd6528cbbf4c  simdutf_8.2.0.orig.tar.xz" | md5sum -c
echo "4f634a36531fb2ba5b92038c42483871  msgpack-cxx_7.0.0.orig.tar.gz" | md5sum -c
apt-get download librestinio-dev=0.6.16-0.2
/usr/bin/python3 -m pip download --no-deps --no-binary :all: llhttp==9.3.0.0 -d "$W/debs"

# 3. Sources.
cd "$W/src"
for archive in opendht-4.3.1 pjproject-sfl-8fc165b8 dhtnet-11f916f2; do
    tar xzf "$SHARED/peers/$archive.tar.gz"
done
tar xJf "$W/debs/simdutf_8.2.0.orig.tar.xz"
tar xzf "$W/debs/msgpack-cxx_7.0.0.orig.tar.gz"
tar xzf "$W/debs/llhttp-9.3.0.0.tar.gz"

# 4. simdutf (dhtnet needs it).
started=$(date +%s)
cd "$W/src/simdutf-simdutf-fd47622"
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$P" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DSIMDUTF_TESTS=OFF -DSIMDUTF_TOOLS=OFF -DSIMDUTF_BENCHMARKS=OFF -DSIMDUTF_ICONV=OFF
nice -n 10 make -C build -j2 install
seconds simdutf "$started"

# 5. msgpack-cxx 7.0.0, header-only.
cd "$W/src/msgpack-cxx-7.0.0"
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$P" -DMSGPACK_CXX17=ON -DMSGPACK_USE_BOOST=OFF \
    -DMSGPACK_BUILD_EXAMPLES=OFF -DMSGPACK_BUILD_TESTS=OFF
make -C build install

# 6. llhttp 9.3.0 (C sources of the PyPI sdist), for RESTinio.
cd "$W/src/llhttp-9.3.0.0/lib"
for file in llhttp api http; do nice -n 10 gcc -O2 -fPIC -I. -c "$file.c" -o "$file.o"; done
gcc -shared -Wl,-soname,libllhttp.so.9.3 -o libllhttp.so.9.3.0 llhttp.o api.o http.o
install -m644 llhttp.h "$P/include/"
install -m755 libllhttp.so.9.3.0 "$P/lib/"
ln -sf libllhttp.so.9.3.0 "$P/lib/libllhttp.so.9.3"
ln -sf libllhttp.so.9.3 "$P/lib/libllhttp.so"
cat >"$P/lib/pkgconfig/libllhttp.pc" <<PC
prefix=$P
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: libllhttp
Description: llhttp HTTP parser
Version: 9.3.0
Libs: -L\${libdir} -lllhttp
Cflags: -I\${includedir}
PC

# 7. RESTinio 0.6.16 headers (bookworm's package), for OpenDHT's HTTP client that dhtnet
#    includes: a shim maps RESTinio's http_parser to llhttp, and one missing include added.
rm -rf "$W/restinio" && dpkg -x "$W/debs/librestinio-dev_0.6.16-0.2_amd64.deb" "$W/restinio"
cp -a "$W/restinio/usr/include/restinio" "$P/include/"
cat >"$P/include/http_parser.h" <<'H'
/* shim: RESTinio 0.6 headers only need the HTTP_* method ids, which llhttp defines identically */
#pragma once
#include <llhttp.h>
H
sed -i 's|#include <restinio/asio_include.hpp>|#include <restinio/compiler_features.hpp>\n#include <restinio/asio_include.hpp>|' \
    "$P/include/restinio/common_types.hpp"

# 8. The pjproject fork (pjnath's ICE-TCP), static.
started=$(date +%s)
cd "$W/src/pjproject-8fc165b8"
./configure --prefix="$P" --disable-sound --enable-video --enable-ext-sound --disable-speex-aec \
    --disable-g711-codec --disable-l16-codec --disable-gsm-codec --disable-g722-codec --disable-g7221-codec \
    --disable-speex-codec --disable-ilbc-codec --disable-opencore-amr --disable-silk --disable-sdl \
    --disable-ffmpeg --disable-v4l2 --disable-openh264 --disable-resample --disable-libwebrtc \
    --with-gnutls=/usr CFLAGS=-fPIC
nice -n 10 make -j2 dep
nice -n 10 make -j2
make install
seconds pjproject "$started"

# 9. OpenDHT 4.3.1: library and tools (dhtnode); indexation on, as its Python bindings need.
started=$(date +%s)
cd "$W/src/opendht-4.3.1"
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$P" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_RPATH="$P/lib" -DBUILD_SHARED_LIBS=ON -DOPENDHT_INDEX=ON \
    -DOPENDHT_PYTHON=OFF -DOPENDHT_TOOLS=ON -DOPENDHT_PROXY_SERVER=OFF -DOPENDHT_PROXY_CLIENT=OFF \
    -DOPENDHT_PUSH_NOTIFICATIONS=OFF -DOPENDHT_HTTP=ON -DBUILD_TESTING=OFF -DOPENDHT_C=ON \
    -DOPENDHT_DOWNLOAD_DEPS=OFF -DOPENDHT_DOCUMENTATION=OFF
nice -n 10 make -C build -j2
make -C build install
seconds opendht "$started"

# 10. OpenDHT's Python bindings, built with Debian's Cython into $P/python (not installed
#     anywhere: tests put it first on PYTHONPATH, ahead of Debian's 2.4.12).
started=$(date +%s)
python=$W/src/opendht-4.3.1/python
mkdir -p "$W/python" "$P/python/opendht"
sed -e "s|@PACKAGE_VERSION@|4.3.1|" -e "s|@CURRENT_SOURCE_DIR@|$python|g" \
    -e "s|@PROJECT_SOURCE_DIR@|$W/src/opendht-4.3.1|g" -e "s|@CURRENT_BINARY_DIR@|$P/lib|g" \
    -e "s|@PROJECT_BINARY_DIR@|$P/lib|g" \
    -e "s|@OPENDHT_PYTHON_INCLUDE_DIRS@|, \"$P/include\"|" \
    -e "s|@OPENDHT_PYTHON_LIBRARY_DIRS@|, \"$P/lib\"|" \
    "$python/setup.py.in" >"$W/python/setup.py"
cp "$python/README.md" "$W/python/"
(cd "$W/python" && CFLAGS="-I$P/include" LDFLAGS="-L$P/lib -Wl,-rpath,$P/lib" \
    nice -n 10 /usr/bin/python3 setup.py build_ext --build-lib "$P/python")
cp "$python"/opendht/*.py "$P/python/opendht/"
PYTHONPATH=$P/python /usr/bin/python3 -c 'import opendht; assert opendht.version().startswith("4.3"), opendht.version()  # 4.3.1 reports 4.3.0'
seconds "opendht python" "$started"

# 11. dhtnet at the daemon's pin, with its tools; the tools read DHTNET_LEGACY_MODE.
started=$(date +%s)
grep -q '^Libs.private' "$P/lib/pkgconfig/libpjproject.pc" &&
    sh "$W/src/dhtnet-11f916f2/dependencies/pkg-static.sh" "$P/lib/pkgconfig/libpjproject.pc"
cd "$W/src/dhtnet-11f916f2"
patch -p1 <"$here/patches/dhtnet-tools-legacy-mode-env.patch"
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$P" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_RPATH="$P/lib" -DBUILD_DEPENDENCIES=OFF -DBUILD_TOOLS=ON -DBUILD_BENCHMARKS=OFF \
    -DBUILD_EXAMPLE=OFF -DBUILD_TESTING=OFF -DDNC_SYSTEMD=OFF \
    -DCMAKE_PROJECT_INCLUDE="$here/yaml-cpp-alias.cmake"
nice -n 10 make -C build -j2
make -C build install
seconds dhtnet "$started"

# 12. The project's dhtnet caller (tests/peers/dhtnet_caller).
started=$(date +%s)
PREFIX=$P bash "$ROOT/tests/peers/dhtnet_caller/build.sh" "$P/bin/dhtnet-caller"
seconds "dhtnet caller" "$started"

# The sources and objects are not needed any more: keep the prefix only.
rm -rf "$W"
