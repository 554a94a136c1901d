#!/usr/bin/env bash
# test_install.sh BUILD_DIR SOURCE_DIR: installs the build into an empty
# prefix and uses it as an outside program would (tests/install.cmake).
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/df11install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "test_install: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
so=$(find "$prefix" -name 'libdf11.so.0' | head -1)
[ -n "$so" ] || fail "no libdf11.so.0 installed"
libdir=$(dirname "$so")
for f in "$prefix/include/df11.h" "$libdir/libdf11.so" "$libdir/libdf11.a" \
         "$libdir/pkgconfig/df11.pc" "$libdir/cmake/df11/df11-config.cmake" \
         "$libdir/cmake/df11/df11-config-version.cmake" \
         "$prefix/bin/df11-encode" "$prefix/bin/df11-decode" \
         "$prefix/bin/df11-verify" "$prefix/bin/df11-info"; do
	[ -e "$f" ] || fail "missing after install: ${f#"$prefix"/}"
done
[ "$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')" = libdf11.so.0 ] ||
	fail "libdf11.so has no SONAME libdf11.so.0"
cuda=0
[ -e "$libdir/libdf11_cuda.so.0" ] && cuda=1
echo "installed into $prefix (libdir ${libdir#"$prefix"/}, libdf11_cuda: $cuda)"

# Exported functions == functions the installed headers declare.
declared() { grep -ho 'DF11_API [^(]*(' "$@" | grep -o 'df11_[a-z0-9_]*($' |
	tr -d '(' | sort -u; }
exported() { nm -D --defined-only "$1" | awk '$2 == "T" { print $3 }' | sort -u; }
check_exports() {
	local lib=$1; shift
	if ! diff <(declared "$@") <(exported "$lib") >"$work/exports.diff"; then
		cat "$work/exports.diff" >&2
		fail "$(basename "$lib") exports differ from its headers (< header only, > library only)"
	fi
	echo "$(basename "$lib"): exports exactly the $(declared "$@" | wc -l) functions of $(basename -a "$@" | tr '\n' ' ')"
}
check_exports "$so" "$prefix/include/df11.h"
[ "$cuda" = 0 ] || check_exports "$libdir/libdf11_cuda.so.0" "$prefix/include/df11_cuda.h"

# 1. find_package(df11)
cmake -S "$src/examples" -B "$work/ex" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/ex" -j2 >/dev/null
"$work/ex/roundtrip"
"$work/ex/roundtrip_static"
"$work/ex/gpu_probe"

# 2. pkg-config
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -std=c11 -Wall -Werror "$src/examples/roundtrip.c" -o "$work/rt_pc" \
	$(pkg-config --cflags --libs df11)
LD_LIBRARY_PATH=$libdir "$work/rt_pc"
pc=df11 def=
if [ "$cuda" = 1 ]; then pc=df11_cuda def=-DHAVE_DF11_CUDA; fi
c++ -std=c++17 -Wall -Werror $def "$src/examples/gpu_probe.cpp" -o "$work/gp_pc" \
	$(pkg-config --cflags --libs $pc)
LD_LIBRARY_PATH=$libdir "$work/gp_pc"
echo "test_install: OK"
