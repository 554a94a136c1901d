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
#              (+ _cta5, _cta7, _cta8: other CTA sizes), bench_forward,
#              df11-run
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
for n in 5 7 8; do
	echo "== build-gpu-cta$n (bench_cuda_decode, $((1 << n)) threads per CTA)"
	configure build-gpu-cta$n -DDF11_CUDA_CTA_LOG2=$n -DDF11_BUILD_TESTS=OFF
	cmake --build build-gpu-cta$n -j"$J" --target bench_cuda_decode >/dev/null
	cp build-gpu-cta$n/bin/bench_cuda_decode "$PACK/bin/bench_cuda_decode_cta$n"
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
