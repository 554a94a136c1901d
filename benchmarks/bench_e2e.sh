#!/usr/bin/env bash
# End-to-end, whole process, file to file: df11-encode against
# `zstd -1 -T<threads>` and df11-decode against `zstd -d`, side by side in
# one run, interleaved, for each input size, with the page cache warm and
# cold. Each command's output is checked (byte for byte after a round
# trip) before anything is timed. Reported per size, mode and program:
# median wall, user and system seconds of REPEATS runs, the largest peak
# resident memory, the median of each run's CPU seconds (user + system)
# per GB of original, and df11's ratios to zstd. Every figure is the
# command's own (benchmarks/rusage_run.c: wait4 on the command itself,
# to the microsecond).
#
# usage: benchmarks/bench_e2e.sh [SIZES [THREADS [REPEATS [MODES]]]]
#   SIZES    comma-separated; a number of bytes (suffix M or G: MiB, GB)
#            is one BF16 matrix of that size in one safetensors file
#            (make_bf16_file), nemo:L the nemo-12b preset with L layers
#            in one file (df11-synth); default 16M,256M,3G
#   THREADS  default 2;  REPEATS default 3 (tripled below 1 GB);
#   MODES    warm,cold (default both)
# env:   DF11_BIN   programs (default build/bin)
#        BENCH_DIR  work folder (default: a fresh temporary one, removed)
#        KEEP=1     keep the work folder
# warm: the input was read just before the run (cat > /dev/null).
# cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before the run (needs
#       root; the mode is skipped otherwise).
# Both: sync before each run, so no run pays for an earlier one's
# writeback; outputs are removed before they are rewritten. Needs free
# disk for about 3.5 times the largest input.
set -euo pipefail
SIZES=${1:-16M,256M,3G}
THREADS=${2:-2}
REPEATS=${3:-3}
MODES=${4:-warm,cold}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${DF11_BIN:-$ROOT/build/bin}" && pwd)
for p in df11-synth df11-encode df11-decode make_bf16_file rusage_run; do
	[ -x "$BIN/$p" ] || { echo "bench_e2e: $BIN/$p missing (run scripts/build.sh)" >&2; exit 2; }
done
command -v zstd >/dev/null || { echo "bench_e2e: zstd not installed" >&2; exit 2; }
if [ -n "${BENCH_DIR:-}" ]; then
	W=$BENCH_DIR
	mkdir -p "$W"
else
	W=$(mktemp -d "${TMPDIR:-/tmp}/df11bench.XXXXXX")
	[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
fi
# More CPUs than threads: every command runs on CPUs 0..THREADS-1.
PIN=()
if [ "$(nproc)" -gt "$THREADS" ]; then
	PIN=(--cpus "$THREADS")
fi
can_drop() { [ -w /proc/sys/vm/drop_caches ]; }

bytes_of() { # 16M -> MiB, 3G -> GB (decimal: "3 GB" files)
	case $1 in
	*M) echo $(( ${1%M} * 1048576 )) ;;
	*G) awk -v g="${1%G}" 'BEGIN { printf "%.0f", g * 1e9 }' ;;
	*) echo "$1" ;;
	esac
}

# make_input TOKEN: the input file's path, generated once.
make_input() {
	local tok=$1 f
	case $tok in
	nemo:*)
		f=$W/nemo${tok#nemo:}/model.safetensors
		[ -f "$f" ] || "$BIN/df11-synth" --preset nemo-12b --layers "${tok#nemo:}" \
			--shard-bytes 1000000000000 -o "$W/nemo${tok#nemo:}" \
			-j "$(nproc)" >/dev/null
		;;
	*)
		f=$W/t$tok.safetensors
		[ -f "$f" ] || "$BIN/make_bf16_file" "$f" "$(bytes_of "$tok")"
		;;
	esac
	echo "$f"
}

# prepare MODE FILE: cache state before a timed run.
prepare() {
	sync
	if [ "$1" = cold ]; then
		echo 3 >/proc/sys/vm/drop_caches
	else
		cat "$2" >/dev/null
	fi
}

# timed NAME CMD...: appends "wall user sys rss_kb" to $W/NAME.times.
timed() {
	local name=$1; shift
	"$BIN/rusage_run" "$W/t.out" "${PIN[@]}" "$@" 2>"$W/err" ||
		{ echo "bench_e2e: $name failed: $(cat "$W/err")" >&2; exit 1; }
	cat "$W/t.out" >>"$W/$name.times"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { cut -d' ' -f"$2" "$W/$1.times" | median; }
cpu() { awk '{ print $2 + $3 }' "$W/$1.times" | median; } # user + sys

echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1e6 }' /proc/meminfo) RAM"
echo "threads $THREADS${PIN:+ (pinned to CPUs 0-$((THREADS - 1)))}; median of $REPEATS interleaved runs ($((3 * REPEATS)) below 1 GB); peak RSS: the largest"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| input | cache | program | wall s | user s | sys s | peak RSS MiB | CPU s/GB | wall vs zstd | CPU vs zstd |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -ra TOKS <<<"$SIZES"
IFS=, read -ra MODE_LIST <<<"$MODES"
for tok in "${TOKS[@]}"; do
	IN=$(make_input "$tok")
	SIZE=$(stat -c %s "$IN")
	D=$W/out
	mkdir -p "$D"
	# Check every output before timing.
	"$BIN/df11-encode" "$IN" -o "$D/m.df11" -j "$THREADS" --force >/dev/null
	"$BIN/df11-decode" "$D/m.df11" -o "$D/m.df11.out" -j "$THREADS" --force >/dev/null
	cmp "$IN" "$D/m.df11.out"
	zstd -q -f -1 -T"$THREADS" "$IN" -o "$D/m.zst"
	zstd -q -f -d "$D/m.zst" -o "$D/m.zst.out"
	cmp "$IN" "$D/m.zst.out"
	rm -f "$D/m.df11.out" "$D/m.zst.out"
	DF=$(stat -c %s "$D/m.df11")
	ZS=$(stat -c %s "$D/m.zst")
	for mode in "${MODE_LIST[@]}"; do
		if [ "$mode" = cold ] && ! can_drop; then
			echo "| $tok | cold | (skipped: cannot write /proc/sys/vm/drop_caches) | | | | | | | |"
			continue
		fi
		rm -f "$W"/*.times
		# Under 1 GB, runs take hundredths to tenths of a second and
		# move more with the machine's other work: three times the runs.
		reps=$REPEATS
		[ "$SIZE" -ge 1000000000 ] || reps=$((3 * REPEATS))
		for r in $(seq "$reps"); do
			rm -f "$D/m.df11"; prepare "$mode" "$IN"
			timed df11_enc "$BIN/df11-encode" "$IN" -o "$D/m.df11" -j "$THREADS"
			rm -f "$D/m.zst"; prepare "$mode" "$IN"
			timed zstd_enc zstd -q -1 -T"$THREADS" "$IN" -o "$D/m.zst"
			prepare "$mode" "$D/m.df11"
			timed df11_dec "$BIN/df11-decode" "$D/m.df11" -o "$D/m.df11.out" -j "$THREADS"
			rm -f "$D/m.df11.out"
			prepare "$mode" "$D/m.zst"
			timed zstd_dec zstd -q -d "$D/m.zst" -o "$D/m.zst.out"
			rm -f "$D/m.zst.out"
		done
		label=$(awk -v s="$SIZE" -v t="$tok" 'BEGIN { printf "%s (%.3g GB)", t, s / 1e9 }')
		for pair in "df11_enc zstd_enc df11-encode zstd-1" "df11_dec zstd_dec df11-decode zstd-d"; do
			set -- $pair
			for who in "$1 $3" "$2 $4"; do
				set -- $who $pair
				awk -v l="$label" -v m="$mode" -v p="$2" -v s="$SIZE" \
				    -v w="$(col "$1" 1)" -v u="$(col "$1" 2)" -v y="$(col "$1" 3)" \
				    -v c="$(cpu "$1")" -v zc="$(cpu "$4")" \
				    -v r="$(cut -d' ' -f4 "$W/$1.times" | sort -n | tail -1)" \
				    -v zw="$(col "$4" 1)" \
				    -v me="$1" -v z="$4" 'BEGIN {
					rel = (me == z) ? "" : sprintf("%.2fx", w / zw)
					crel = (me == z) ? "" : sprintf("%.2fx", c / zc)
					printf "| %s | %s | %s | %.3f | %.3f | %.3f | %.0f | %.2f | %s | %s |\n",
					       l, m, p, w, u, y, r / 1024, c / (s / 1e9), rel, crel }'
			done
		done
	done
	awk -v d="$DF" -v z="$ZS" -v s="$SIZE" -v t="$tok" 'BEGIN {
		printf "| %s | size | df11 %.2f%%, zstd -1 %.2f%% of original | | | | | | | |\n",
		       t, 100 * d / s, 100 * z / s }'
	rm -rf "$D"
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
