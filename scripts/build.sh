#!/usr/bin/env bash
# Configures and builds into build/ (Release; programs land in build/bin/).
set -euo pipefail
cd "$(dirname "$0")/.."
# CUDA's usual home, so that CMake finds nvcc and builds libdf11_cuda.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDF11_WERROR=ON "$@" >/dev/null
cmake --build build -j"$(nproc)"
