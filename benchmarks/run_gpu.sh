#!/usr/bin/env bash
# On a machine with a GPU: build with CUDA, run the GPU tests, run the GPU
# test binary under compute-sanitizer (memcheck, racecheck, synccheck), and
# run the decode benchmark. Logs go to $OUT if set (the device tool brings
# that folder back), else to build-gpu/logs. A summary table is printed last.
#
#   bash benchmarks/run_gpu.sh            everything (about 5 minutes on an H100)
#   bash benchmarks/run_gpu.sh --quick    small benchmark sizes only
#   bash benchmarks/run_gpu.sh --bench    build + benchmark only
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
LOG=${OUT:-build-gpu/logs}
mkdir -p "$LOG"
export PATH=/usr/local/cuda/bin:$PATH
SUMMARY=()
note() { SUMMARY+=("$1"); echo "== $1"; }

nvidia-smi >"$LOG/nvidia-smi.txt" 2>&1 || true
nvcc --version >"$LOG/nvcc.txt" 2>&1 || true

if ! cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDF11_WERROR=ON \
	-DDF11_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
	>"$LOG/configure.log" 2>&1; then
	tail -20 "$LOG/configure.log"
	echo "run_gpu.sh: cmake configure failed (see configure.log; the build"
	echo "needs cmocka, jansson, libxxhash and zlib development files)"
	exit 1
fi
if ! cmake --build build-gpu -j16 >"$LOG/build.log" 2>&1; then
	grep -E "error|warning" "$LOG/build.log" | head -30
	echo "run_gpu.sh: build failed (see build.log)"
	exit 1
fi
note "build: ok ($(grep -c -i warning "$LOG/build.log") warning lines)"

if [ "$MODE" != "--bench" ]; then
	(cd build-gpu && ctest -R cuda --output-on-failure) >"$LOG/ctest.log" 2>&1
	note "ctest -R cuda: rc $? ($(grep -E 'tests passed|tests failed' "$LOG/ctest.log" | tail -1))"
	build-gpu/bin/test_cuda_gpu >"$LOG/test_cuda_gpu.log" 2>&1
	note "test_cuda_gpu: rc $? ($(grep -cE '^\[       OK \]' "$LOG/test_cuda_gpu.log") ok, $(grep -cE '^\[  SKIPPED \]' "$LOG/test_cuda_gpu.log") skipped lines)"

	CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
	if [ -x "$CS" ]; then
		# A quarter-size Nemo layer and fewer ranges per test case keep
		# the sanitizers' runs short.
		for tool in memcheck racecheck synccheck; do
			DF11_GPU_TEST_NEMO_DIV=4 DF11_GPU_TEST_RANGES=12 \
			timeout 900 "$CS" --tool "$tool" \
				--error-exitcode 42 build-gpu/bin/test_cuda_gpu \
				>"$LOG/sanitizer-$tool.log" 2>&1
			rc=$?
			note "compute-sanitizer $tool: rc $rc, $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$LOG/sanitizer-$tool.log" | tail -1)"
		done
	else
		note "compute-sanitizer: not found, not run"
	fi
fi

if [ "$MODE" = "--quick" ]; then
	build-gpu/bin/bench_cuda_decode --quick >"$LOG/bench.log" 2>&1
else
	build-gpu/bin/bench_cuda_decode >"$LOG/bench.log" 2>&1
fi
note "bench_cuda_decode: rc $?"

echo
cat "$LOG/bench.log"
echo
printf '%s\n' "${SUMMARY[@]}"
