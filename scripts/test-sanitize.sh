#!/usr/bin/env bash
# The sanitizer half of CI (run by scripts/test.sh; see docs/TESTING.md):
#  1. build-asan/: gcc with -DDF11_SANITIZE=ON (AddressSanitizer +
#     UndefinedBehaviorSanitizer, UB aborts) and the whole ctest suite,
#     including every fuzz corpus replayed through its target;
#  2. build-fuzz/: clang with -DDF11_BUILD_FUZZERS=ON; each libFuzzer target
#     runs for DF11_FUZZ_SECONDS (default 60) from its committed corpus,
#     with libFuzzer's random seed fixed to DF11_FUZZ_SEED (default 1), so
#     that a finding in CI reproduces with the same command; 0 draws a
#     fresh seed (longer exploratory runs: docs/TESTING.md).
# Any sanitizer report, fuzzer crash, timeout, leak or failed check fails
# the script. Crash inputs are kept in build-fuzz/artifacts/; reproduce one
# with `build-fuzz/bin/fuzz_<target> <file>` (or the gcc replay driver
# build/bin/fuzz_<target> <file>), then add it to fuzz/corpus/<target>/ and
# a named test to tests/test_regress.c.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
seconds="${DF11_FUZZ_SECONDS:-60}"
seed="${DF11_FUZZ_SEED:-1}"

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== ASan+UBSan build (build-asan) and the whole test suite"
# CUDA off: nvcc does not take -fsanitize, and CI has no GPU.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDF11_WERROR=ON \
  -DDF11_SANITIZE=ON -DDF11_BUILD_BENCHMARKS=OFF -DDF11_ENABLE_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && DF11_SANITIZED=1 ctest --output-on-failure -j"$jobs")

if ! command -v clang >/dev/null 2>&1; then
  echo "clang not found: libFuzzer runs SKIPPED (scripts/setup.sh installs clang)"
  exit 0
fi

echo "== libFuzzer build (build-fuzz), ${seconds}s per target, seed ${seed}"
# Only the fuzz targets and their copy of the library are instrumented; the
# rest (HDF5 plugin, shared libraries) builds as usual. CUDA off: nvcc is
# not needed for fuzzing and costs minutes.
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDF11_WERROR=ON -DDF11_BUILD_FUZZERS=ON -DDF11_BUILD_TESTS=OFF \
  -DDF11_BUILD_BENCHMARKS=OFF -DDF11_ENABLE_CUDA=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"

mkdir -p build-fuzz/artifacts
failed=0
for dir in fuzz/corpus/*/; do
  t="$(basename "$dir")"
  bin="build-fuzz/bin/fuzz_$t"
  [ -x "$bin" ] || continue
  # New inputs go to a scratch corpus: the committed one stays as it is.
  work="build-fuzz/corpus/$t"
  rm -rf "$work"
  mkdir -p "$work"
  log="build-fuzz/fuzz_$t.log"
  if "$bin" "$work" "$dir" -max_total_time="$seconds" -seed="$seed" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/${t}-" >"$log" 2>&1; then
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    files="$(find "$work" "$dir" -type f | wc -l)"
    bytes="$(cat "$work"/* "$dir"/* 2>/dev/null | wc -c)"
    echo "fuzz_$t: ${execs} executions in ${seconds}s, corpus ${files} files (${bytes} bytes)"
  else
    echo "fuzz_$t: FAILED (log: $log)"
    grep -E "ERROR|SUMMARY|check failed|Test unit written" "$log" | head -20 || true
    failed=1
  fi
done
[ "$failed" -eq 0 ] || { echo "fuzzing found a bug"; exit 1; }
echo "fuzzers: all passed"
