#!/usr/bin/env bash
# On the lent GPU machine: the GPU checks of libdf11_cuda and the CUDA
# forward pass, in one call that ends inside a time budget. Prepare HERE
# first (benchmarks/gpu_prepare.sh), then, with the device tool:
#
#   run(command="bash benchmarks/gpu_session.sh",
#       carry=["build-gpu-pack", "build-gpudeps"], timeout_s=600)
#
#   bash benchmarks/gpu_session.sh [STEP...]        default: all
#
# Steps, in this order (all = every one):
#   tests     test_cuda_gpu (every codec case whole, misaligned, in ranges
#             and batches; a full Nemo layer, also replayed from a CUDA
#             graph), test_forward_cuda (DF11 == BF16 bit for bit, CUDA vs
#             the CPU reference), df11-run --device cuda on stories260K
#   bench     bench_cuda_decode: decode GB/s of the window and the staged
#             kernel, 8 MiB .. 1 GiB, a Nemo layer (9 tensors) and a
#             2.2G-element tensor, beside cudaMemcpy and the read+write
#             bound
#   forward   bench_forward: the BF16 vs DF11 table on a synthetic nemo-12b
#   sanitize  compute-sanitizer memcheck and racecheck on test_cuda_gpu
#             (a Nemo layer at 1/8 of each dimension), memcheck on
#             test_forward_cuda
#   tune      bench_cuda_decode with other CTA sizes, steps and runs
#             (gpu_prepare.sh builds them; up to 256 MiB and a layer)
#
# BUDGET_S (default 540): the seconds this call may take. A step starts
# only if its minimum fits in what is left and runs under a timeout of what
# is left, so the call ends in time and says what it skipped. Files (at
# most 8, under $OUT, else build-gpu-logs/): summary.txt, setup.log,
# tests.log, bench-decode.log, bench-forward.log, forward.json,
# sanitize.log, tune.log. The summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
BUDGET=${BUDGET_S:-540}
LOG=${OUT:-build-gpu-logs}
PACK=build-gpu-pack
mkdir -p "$LOG"
SUMMARY=$LOG/summary.txt
: >"$SUMMARY"
export PATH=/usr/local/cuda/bin:$PATH

STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(all)
[ "${STEPS[0]}" = all ] && STEPS=(tests bench forward sanitize tune)

left() { echo $((BUDGET - ($(date +%s) - T0))); }
say() { echo "$*" | tee -a "$SUMMARY"; }

# capped CAP MIN LOGFILE LABEL CMD...: runs CMD (output appended to
# LOGFILE) under a timeout of min(CAP, what is left - 10 s) if at least MIN
# seconds are left; one summary line either way. Returns CMD's status.
capped() {
	local cap=$1 min=$2 file=$3 label=$4
	shift 4
	local l t s rc
	l=$(left)
	if [ "$l" -lt $((min + 10)) ]; then
		say "SKIPPED $label: ${l}s left, it needs ${min}s"
		return 125
	fi
	t=$((l - 10 < cap ? l - 10 : cap))
	echo "== $label (timeout ${t}s): $*" >>"$file"
	s=$(date +%s)
	timeout -k 10 "$t" "$@" >>"$file" 2>&1
	rc=$?
	say "$label: rc $rc in $(($(date +%s) - s))s$([ $rc -eq 124 ] && echo ' (TIMED OUT)')"
	return $rc
}

# ------------------------------------------------------------ setup
{
	date -u
	nvidia-smi 2>&1
	nvcc --version 2>&1 | tail -2
	compute-sanitizer --version 2>&1 | head -2
	echo "cpus $(nproc)"
	free -g
	df -h . /tmp | sed 1d
} >"$LOG/setup.log" 2>&1
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
	--format=csv,noheader 2>/dev/null | head -1)
say "machine: ${GPU:-no nvidia-smi}, $(nproc) CPUs"

# Libraries: the pack's, the unpacked Debian packages', CUDA's.
LIBS=$PWD/$PACK/lib:$PWD/build-gpudeps/root/usr/lib/x86_64-linux-gnu
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
	[ -d "$d" ] && LIBS=$LIBS:$d
done
export LD_LIBRARY_PATH=$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Whether the binaries load here: bench_forward links every library the
# others do.
loads() { { "$BIN/bench_forward" --help 2>&1 || :; } | grep -q usage; }

BIN=$PACK/bin
if [ ! -x "$BIN/test_cuda_gpu" ]; then
	say "no prepared binaries ($PACK): building here"
	BIN=
elif ! sha256sum --quiet -c "$PACK/SOURCES" >>"$LOG/setup.log" 2>&1; then
	say "the prepared binaries were built from other sources: building here"
	BIN=
else
	if ! loads; then
		# libcublasLt somewhere else (e.g. a pip wheel of PyTorch's).
		lt=$(find /usr /opt -name 'libcublasLt.so.1[3-9]*' 2>/dev/null | head -1)
		[ -n "$lt" ] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "$lt")
	fi
	if ! loads; then
		ldd "$BIN/bench_forward" >>"$LOG/setup.log" 2>&1
		say "the prepared binaries do not load here (setup.log): building here"
		BIN=
	fi
fi
if [ -z "$BIN" ]; then
	DEPS=()
	[ -x build-gpudeps/bin/pkg-config ] &&
		DEPS=(-DPKG_CONFIG_EXECUTABLE="$PWD/build-gpudeps/bin/pkg-config"
		      -DCMAKE_PREFIX_PATH="$PWD/build-gpudeps/root/usr")
	# No -Werror here: a newer host compiler's new warnings are CI's
	# business, not a reason to lose the GPU run.
	capped 300 120 "$LOG/setup.log" "build (nvcc, $(nproc) jobs)" bash -c '
		cmake -S . -B build-gpu-dev -DCMAKE_BUILD_TYPE=Release \
			-DDF11_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
			-DDF11_WITH_HDF5=OFF -DDF11_CUDA_RUNTIME=Static "$@" &&
		cmake --build build-gpu-dev -j"$(nproc)" --target test_cuda_gpu \
			test_forward_cuda bench_cuda_decode bench_forward df11-run' \
		_ "${DEPS[@]}" || { cat "$SUMMARY"; exit 1; }
	BIN=build-gpu-dev/bin
fi
export DF11_SOURCE_DIR=$PWD
STORIES=$PACK/data/stories260K
[ -f "$STORIES/model.safetensors" ] || STORIES=tests/fixtures/stories260K
export DF11_STORIES=$PWD/$STORIES
say "binaries: $BIN; stories260K: $STORIES"

# Lines of a cmocka log worth a summary: results and failures.
cm_summary() { grep -E '^\[  (PASSED|FAILED|SKIPPED) +\]|no CUDA device|no GPU|FAILED' "$1" | tail -6 | sed 's/^/    /' | tee -a "$SUMMARY"; }

# ------------------------------------------------------------ steps
for step in "${STEPS[@]}"; do
	case "$step" in
	tests)
		F=$LOG/tests.log
		capped 240 30 "$F" "test_cuda_gpu" "$BIN/test_cuda_gpu"
		cm_summary "$F"
		: >"$LOG/.fwd" && capped 240 30 "$LOG/.fwd" "test_forward_cuda" "$BIN/test_forward_cuda"
		cat "$LOG/.fwd" >>"$F"
		cm_summary "$LOG/.fwd"
		rm -f "$LOG/.fwd"
		P=$(seq -s, 1 14)
		rm -f /tmp/stories.*
		for w in bf16 df11; do
			capped 60 10 "$F" "df11-run stories260K --weights $w" bash -c \
				'"$0" "$@" >/tmp/stories.$3.tok' "$BIN/df11-run" "$STORIES" \
				--weights "$w" --device cuda --tokens "$P" --generate 8 \
				--dump-logits "/tmp/stories.$w"
			cat "/tmp/stories.$w.tok" >>"$F" 2>/dev/null
		done
		if [ ! -s /tmp/stories.bf16.tok ] || [ ! -s /tmp/stories.df11.tok ]; then
			say "    df11-run stories260K: FAILED (tests.log)"
		elif cmp -s /tmp/stories.bf16 /tmp/stories.df11 &&
			cmp -s /tmp/stories.bf16.tok /tmp/stories.df11.tok; then
			say "    df11-run stories260K: DF11 logits and tokens == BF16, bit for bit"
		else
			say "    df11-run stories260K: DF11 and BF16 DIFFER (tests.log)"
		fi
		;;
	bench)
		F=$LOG/bench-decode.log
		capped 300 90 "$F" "bench_cuda_decode" "$BIN/bench_cuda_decode"
		# bench_cuda_decode's device line and its table to the end.
		{ grep -E '^(device|median)' "$F"; sed -n '/^tensor /,$p' "$F"; } |
			tee -a "$SUMMARY"
		;;
	forward)
		F=$LOG/bench-forward.log
		capped 360 150 "$F" "bench_forward nemo-12b" "$BIN/bench_forward" \
			--synth nemo-12b --json "$LOG/forward.json"
		grep -E '^\||synthetic|check|differ' "$F" | tee -a "$SUMMARY"
		;;
	sanitize)
		F=$LOG/sanitize.log
		CS=$(command -v compute-sanitizer)
		if [ -z "$CS" ]; then
			say "compute-sanitizer: not found, sanitize skipped"
			continue
		fi
		for tool in memcheck racecheck; do
			DF11_GPU_TEST_NEMO_DIV=8 DF11_GPU_TEST_RANGES=4 \
				capped 150 40 "$F" "compute-sanitizer $tool test_cuda_gpu" \
				"$CS" --tool "$tool" --error-exitcode 42 "$BIN/test_cuda_gpu"
			grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$F" | tail -1 | sed 's/^/    /' | tee -a "$SUMMARY"
		done
		capped 150 40 "$F" "compute-sanitizer memcheck test_forward_cuda" \
			"$CS" --tool memcheck --error-exitcode 42 "$BIN/test_forward_cuda"
		grep -E 'ERROR SUMMARY' "$F" | tail -1 | sed 's/^/    /' | tee -a "$SUMMARY"
		pkill -f test_cuda_gpu; pkill -f test_forward_cuda
		;;
	tune)
		F=$LOG/tune.log
		: >>"$F"
		found=0
		for b in "$BIN"/bench_cuda_decode_cta*; do
			[ -x "$b" ] || continue
			found=1
			capped 90 40 "$F" "$(basename "$b")" "$b" --max-mib 256 \
				--runs 20 --no-huge
		done
		[ $found = 1 ] || say "tune: no bench_cuda_decode_cta* in $BIN"
		grep -E '^(== |tensor |matrix |nemo )' "$F" | tee -a "$SUMMARY"
		;;
	*)
		say "unknown step $step (tests bench forward sanitize tune all)"
		;;
	esac
done
say "total: $(($(date +%s) - T0))s of a ${BUDGET}s budget"
echo
echo "==================== summary ===================="
cat "$SUMMARY"
