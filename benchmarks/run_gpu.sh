#!/usr/bin/env bash
# On a machine with a GPU: build with CUDA, then run the GPU tests, the GPU
# test binary under compute-sanitizer, and/or the decode benchmark. Logs go
# to $OUT if set (the device tool brings that folder back), else to
# build-gpu/logs; a summary is printed last.
#
#   bash benchmarks/run_gpu.sh STEP...
#
# STEP is one of
#   tests      ctest -R cuda (test_cuda_emul and test_cuda_gpu)
#   memcheck   compute-sanitizer --tool memcheck on test_cuda_gpu
#   racecheck  compute-sanitizer --tool racecheck on test_cuda_gpu
#   synccheck  compute-sanitizer --tool synccheck on test_cuda_gpu
#   bench      the decode benchmark (8 MiB .. 1 GiB and a Nemo layer)
#   quick      the benchmark up to 64 MiB, 5 runs (a smoke test)
#   bench-cta7 the benchmark with 128-thread CTAs (a second build in
#              build-gpu-cta7/; also cta5, cta8)
#   all        tests memcheck racecheck synccheck bench
# default: tests bench. The build (incremental in build-gpu/) runs first.
# If the device image lacks cmocka/jansson/xxHash/zlib, run
# benchmarks/gpu_deps.sh here first and carry build-gpudeps.
# With a 10-minute limit per command, run e.g. "tests memcheck", then
# "racecheck synccheck", then "bench" as three commands on a warm machine.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${OUT:-build-gpu/logs}
mkdir -p "$LOG"
export PATH=/usr/local/cuda/bin:$PATH
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(tests bench)
[ "${STEPS[0]}" = all ] && STEPS=(tests memcheck racecheck synccheck bench)
SUMMARY=()
note() { SUMMARY+=("$1"); echo "== $1"; }

# At most 8 files come back from $OUT: env.txt, build.log, ctest.log,
# sanitizer-<tool>.log (3) and bench-<step>.log.
{ nvidia-smi; nvcc --version; cmake --version; } >"$LOG/env.txt" 2>&1

# Libraries carried from this repo's machine (benchmarks/gpu_deps.sh), for
# a device image without cmocka, jansson, xxHash or zlib headers.
DEPS=()
if [ -x build-gpudeps/bin/pkg-config ]; then
	DEPS=(-DPKG_CONFIG_EXECUTABLE="$PWD/build-gpudeps/bin/pkg-config"
	      -DCMAKE_PREFIX_PATH="$PWD/build-gpudeps/root/usr")
fi
if ! cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDF11_WERROR=ON \
	-DDF11_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
	"${DEPS[@]}" >"$LOG/build.log" 2>&1; then
	tail -20 "$LOG/build.log"
	echo "run_gpu.sh: cmake configure failed (see build.log). The build needs"
	echo "cmocka, jansson, libxxhash and zlib: run benchmarks/gpu_deps.sh on"
	echo "the repo's machine and carry build-gpudeps"
	exit 1
fi
if ! cmake --build build-gpu -j16 >>"$LOG/build.log" 2>&1; then
	grep -E "error|warning" "$LOG/build.log" | head -30
	echo "run_gpu.sh: build failed (see build.log)"
	exit 1
fi
note "build: ok ($(grep -ci 'warning' "$LOG/build.log") lines with 'warning')"

CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for step in "${STEPS[@]}"; do
	case "$step" in
	tests)
		(cd build-gpu && ctest -R cuda -V) >"$LOG/ctest.log" 2>&1
		note "ctest -R cuda: rc $? ($(grep -E 'tests passed|tests failed' "$LOG/ctest.log" | tail -1))"
		grep -E '\[ *(OK|FAILED|SKIPPED|ERROR) *\]|no CUDA device|Failure' \
			"$LOG/ctest.log" | head -20
		;;
	memcheck | racecheck | synccheck)
		if [ ! -x "$CS" ]; then
			note "compute-sanitizer: not found, $step not run"
			continue
		fi
		# A quarter-size Nemo layer and fewer ranges per test case keep
		# the sanitizer runs short.
		DF11_GPU_TEST_NEMO_DIV=4 DF11_GPU_TEST_RANGES=12 \
			timeout 560 "$CS" --tool "$step" --error-exitcode 42 \
			build-gpu/bin/test_cuda_gpu >"$LOG/sanitizer-$step.log" 2>&1
		rc=$?
		note "compute-sanitizer $step: rc $rc (0 clean, 42 errors, 124 timeout); $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$LOG/sanitizer-$step.log" | tail -1)"
		;;
	bench | quick)
		args=()
		[ "$step" = quick ] && args=(--quick)
		build-gpu/bin/bench_cuda_decode "${args[@]}" >"$LOG/bench-$step.log" 2>&1
		note "bench_cuda_decode $step: rc $?"
		cat "$LOG/bench-$step.log"
		;;
	bench-cta[5-8])
		n=${step#bench-cta}
		B=build-gpu-cta$n
		if cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DDF11_WERROR=ON \
			-DDF11_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
			-DDF11_CUDA_CTA_LOG2=$n -DDF11_BUILD_TESTS=OFF "${DEPS[@]}" \
			>>"$LOG/build.log" 2>&1 &&
			cmake --build $B -j16 --target bench_cuda_decode >>"$LOG/build.log" 2>&1; then
			$B/bin/bench_cuda_decode >"$LOG/bench-$step.log" 2>&1
			note "bench_cuda_decode $step: rc $?"
			cat "$LOG/bench-$step.log"
		else
			note "$step: build failed (see build.log)"
		fi
		;;
	*)
		note "unknown step $step"
		;;
	esac
done
echo
printf '%s\n' "${SUMMARY[@]}"
