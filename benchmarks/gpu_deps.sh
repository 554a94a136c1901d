#!/usr/bin/env bash
# Run HERE (not on the GPU machine): fetches the Debian packages the build
# needs besides CUDA and CMake (cmocka, jansson, xxHash, zlib, pkgconf) and
# unpacks them into build-gpudeps/ (git-ignored, about 5 MB). The device
# image has CUDA and CMake but may lack these; pass build-gpudeps in the
# device tool's carry list and benchmarks/gpu_session.sh uses them when it
# has to build there.
set -euo pipefail
cd "$(dirname "$0")/.."
D=build-gpudeps
rm -rf "$D"
mkdir -p "$D/debs" "$D/root" "$D/bin"
(cd "$D/debs" && apt-get download libcmocka0 libcmocka-dev libjansson4 \
	libjansson-dev libxxhash0 libxxhash-dev zlib1g zlib1g-dev pkgconf \
	pkgconf-bin libpkgconf3)
for f in "$D"/debs/*.deb; do
	dpkg -x "$f" "$D/root"
done
rm -rf "$D/debs"
# pkgconf with its own library, reading only these packages' .pc files;
# PKG_CONFIG_SYSROOT_DIR puts the unpacked tree in front of their paths.
cat >"$D/bin/pkg-config" <<'WRAP'
#!/bin/sh
R="$(cd "$(dirname "$0")/../root" && pwd)"
export PKG_CONFIG_LIBDIR="$R/usr/lib/x86_64-linux-gnu/pkgconfig:$R/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$R"
LD_LIBRARY_PATH="$R/usr/lib/x86_64-linux-gnu" exec "$R/usr/bin/pkgconf" "$@"
WRAP
chmod +x "$D/bin/pkg-config"
"$D/bin/pkg-config" --cflags --libs cmocka jansson libxxhash zlib
du -sh "$D"
