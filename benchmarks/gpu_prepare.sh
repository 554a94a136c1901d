#!/usr/bin/env bash
# Run HERE, before a GPU session: builds every program the GPU checks need
# and packs them, with the shared libraries the GPU machine may lack and
# the stories260K model, into build-gpu-pack/ (git-ignored, a few MB), so
# that the lent machine spends its minutes on the GPU, not on nvcc.
#
#   bash benchmarks/gpu_prepare.sh
#
# then, with the device tool:
#   run(command="bash benchmarks/gpu_session.sh",
#       carry=["build-gpu-pack", "build-gpudeps"], timeout_s=600)
#
# build-gpu-pack/
#   bin/       test_cuda_gpu, test_forward_cuda, bench_cuda_decode
#              (+ _cta<n>_step<s>_run<r>: other CTA sizes, steps, runs),
#              bench_forward, df11-run
#   lib/       libcmocka, libjansson, libxxhash (the binaries' non-system
#              libraries; CUDA's libcublasLt comes from the GPU machine)
#   data/      stories260K
#   SOURCES    sha256 of every tracked source file the binaries were built
#              from: gpu_session.sh rebuilds there if the tree differs
# build-gpudeps/ (benchmarks/gpu_deps.sh) is carried too, for that rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/cuda/bin:$PATH
command -v nvcc >/dev/null || { echo "gpu_prepare.sh: nvcc not found" >&2; exit 1; }
PACK=build-gpu-pack
J=$(nproc)
STORIES=${DF11_STORIES:-tests/fixtures/stories260K}
[ -f "$STORIES/model.safetensors" ] || {
	echo "gpu_prepare.sh: stories260K not found at $STORIES (set DF11_STORIES)" >&2
	exit 1
}
[ -x build-gpudeps/bin/pkg-config ] || bash benchmarks/gpu_deps.sh

TARGETS=(test_cuda_gpu test_forward_cuda bench_cuda_decode bench_forward
	 df11-run)
configure() { # DIR [cmake args]
	local dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DDF11_WERROR=ON \
		-DDF11_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
		-DDF11_WITH_HDF5=OFF -DDF11_CUDA_RUNTIME=Static "$@" >/dev/null
}
echo "== build-gpu (${TARGETS[*]})"
configure build-gpu
cmake --build build-gpu -j"$J" --target "${TARGETS[@]}" >/dev/null

rm -rf "$PACK"
mkdir -p "$PACK/bin" "$PACK/lib" "$PACK/data"
for t in "${TARGETS[@]}"; do
	cp build-gpu/bin/"$t" "$PACK/bin/"
done
# Other CTA sizes, step lengths and run lengths of the staged kernel (the
# default is 128 threads, 16 lookups per step, 512-bit runs;
# scripts/test-ptxas.sh lists what compiles).
for cfg in "5 16 9" "6 16 9" "7 8 9" "8 8 9" "7 16 8" "7 16 11"; do
	read -r n st r <<<"$cfg"
	d=build-gpu-cta${n}-step$st-run$r
	echo "== $d (bench_cuda_decode, $((1 << n)) threads per CTA, steps of $st, runs of $((1 << r)) bits)"
	configure "$d" -DDF11_CUDA_CTA_LOG2=$n -DDF11_CUDA_STAGED_STEP=$st \
		-DDF11_CUDA_RUN_LOG2=$r -DDF11_BUILD_TESTS=OFF
	cmake --build "$d" -j"$J" --target bench_cuda_decode >/dev/null
	cp "$d/bin/bench_cuda_decode" \
		"$PACK/bin/bench_cuda_decode_cta${n}_step${st}_run$r"
done

# Libraries outside glibc, libstdc++ and CUDA, by soname.
for b in "$PACK"/bin/*; do
	ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r soname path; do
	case "$soname" in
	libc.so.* | libm.so.* | libdl.so.* | librt.so.* | libpthread.so.* | \
		libstdc++.so.* | libgcc_s.so.* | ld-linux* | libcu*) ;;
	*) cp -L "$path" "$PACK/lib/$soname" ;;
	esac
done
cp -r "$STORIES" "$PACK/data/stories260K"
chmod -R u+w "$PACK/data"

# What the binaries were built from.
git ls-files -z --cached --others --exclude-standard -- CMakeLists.txt '*.c' '*.h' '*.cu' '*.cuh' '*.cmake' \
	'*/CMakeLists.txt' | xargs -0 sha256sum > "$PACK/SOURCES"
du -sh "$PACK" build-gpudeps
echo "carry: [\"$PACK\", \"build-gpudeps\"]"
