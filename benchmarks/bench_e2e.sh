#!/usr/bin/env bash
# End-to-end, file to file: df11-encode against `zstd -1 -T<threads>` and
# df11-decode against `zstd -d`, side by side in one run, on a synthetic
# checkpoint with Mistral-Nemo-12B shapes and realistic BF16 statistics.
# Each command is checked (outputs compared byte for byte) before it is
# timed; reported: median wall time of REPEATS runs (interleaved), MB/s of
# the original size, output size, and peak resident memory (/usr/bin/time).
#
# usage: benchmarks/bench_e2e.sh [GIB [THREADS [REPEATS]]]   (default 2 2 3)
# env:   DF11_BIN   programs (default build/bin)
#        BENCH_DIR  work folder (default: a fresh temporary one, removed)
#        KEEP=1     keep the work folder
# The input is in the page cache for every run (it was just read), as are
# the outputs of earlier runs; with < 2x RAM of free page cache the numbers
# measure the disk instead. Run it on a quiet machine.
set -euo pipefail
GIB=${1:-2}
THREADS=${2:-2}
REPEATS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${DF11_BIN:-$ROOT/build/bin}" && pwd)
for p in df11-synth df11-encode df11-decode; do
	[ -x "$BIN/$p" ] || { echo "bench_e2e: $BIN/$p missing (run scripts/build.sh)" >&2; exit 2; }
done
command -v zstd >/dev/null || { echo "bench_e2e: zstd not installed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_e2e: /usr/bin/time not installed" >&2; exit 2; }
if [ -n "${BENCH_DIR:-}" ]; then
	W=$BENCH_DIR
	mkdir -p "$W"
else
	W=$(mktemp -d "${TMPDIR:-/tmp}/df11bench.XXXXXX")
	[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
fi
# Pin to THREADS cores where the machine has more, so both tools get the
# same CPUs.
PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt "$THREADS" ]; then
	PIN=(taskset -c "0-$((THREADS - 1))")
fi

# Layers of nemo-12b shapes to reach GIB: embeddings + lm_head are
# 2.68 GB, each layer 0.545 GB; at least one layer so every shape is in.
need=$(awk -v g="$GIB" 'BEGIN { printf "%.0f", g * 1073741824 }')
layers=$(awk -v n="$need" 'BEGIN { l = (n - 2684354560) / 545259520;
	l = (l < 1) ? 1 : int(l + 0.999); print l }')
IN=$W/ckpt/model.safetensors
if [ ! -f "$IN" ]; then
	echo "generating nemo-12b shapes, $layers layer(s), one file ..."
	"$BIN/df11-synth" --preset nemo-12b --layers "$layers" \
		--shard-bytes 1000000000000 -o "$W/ckpt" -j "$(nproc)" >/dev/null
fi
SIZE=$(stat -c %s "$IN")

# timed NAME CMD...: runs CMD under /usr/bin/time, appends "wall rss" to
# $W/NAME.times.
timed() {
	local name=$1; shift
	/usr/bin/time -f "%e %M" -o "$W/t.out" "${PIN[@]}" "$@" >/dev/null 2>"$W/err" ||
		{ echo "bench_e2e: $name failed: $(cat "$W/err")" >&2; exit 1; }
	tail -1 "$W/t.out" >>"$W/$name.times"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "checking outputs before timing ..."
"${PIN[@]}" "$BIN/df11-encode" "$IN" -o "$W/m.df11" -j "$THREADS" --force >/dev/null
"${PIN[@]}" "$BIN/df11-decode" "$W/m.df11" -o "$W/m.df11.out" -j "$THREADS" --force >/dev/null
cmp "$IN" "$W/m.df11.out"
"${PIN[@]}" zstd -q -f -1 -T"$THREADS" "$IN" -o "$W/m.zst"
"${PIN[@]}" zstd -q -f -d "$W/m.zst" -o "$W/m.zst.out"
cmp "$IN" "$W/m.zst.out"

rm -f "$W"/*.times
for r in $(seq "$REPEATS"); do
	rm -f "$W/m.df11" "$W/m.zst"
	timed df11_enc "$BIN/df11-encode" "$IN" -o "$W/m.df11" -j "$THREADS"
	timed zstd_enc zstd -q -1 -T"$THREADS" "$IN" -o "$W/m.zst"
	rm -f "$W/m.df11.out" "$W/m.zst.out"
	timed df11_dec "$BIN/df11-decode" "$W/m.df11" -o "$W/m.df11.out" -j "$THREADS"
	timed zstd_dec zstd -q -d "$W/m.zst" -o "$W/m.zst.out"
done
cmp "$IN" "$W/m.df11.out"
cmp "$IN" "$W/m.zst.out"

row() { # NAME LABEL BYTES_OUT
	local wall rss
	wall=$(cut -d' ' -f1 "$W/$1.times" | median)
	rss=$(cut -d' ' -f2 "$W/$1.times" | sort -n | tail -1)
	awk -v l="$2" -v w="$wall" -v s="$SIZE" -v o="$3" -v r="$rss" 'BEGIN {
		printf "%-26s %9.2f s %8.0f MB/s %8.0f MB peak RSS  %7.2f%% of original\n",
		       l, w, s / w / 1e6, r / 1024, 100 * o / s }'
}
DF=$(stat -c %s "$W/m.df11")
ZS=$(stat -c %s "$W/m.zst")
echo
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
     "$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1e6 }' /proc/meminfo) RAM; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $IN, $SIZE bytes ($layers layers of nemo-12b shapes); threads $THREADS${PIN:+ (pinned: ${PIN[*]})}; median of $REPEATS"
row df11_enc "df11-encode -j$THREADS" "$DF"
row zstd_enc "zstd -1 -T$THREADS" "$ZS"
row df11_dec "df11-decode -j$THREADS" "$SIZE"
row zstd_dec "zstd -d" "$SIZE"
awk -v d="$DF" -v z="$ZS" -v s="$SIZE" 'BEGIN {
	printf "size: df11 %.2f%%, zstd -1 %.2f%%: df11 is %.1f points smaller\n",
	       100 * d / s, 100 * z / s, 100 * (z - d) / s }'
