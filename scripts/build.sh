#!/usr/bin/env bash
# Configures and builds into build/ (Release; programs land in build/bin/).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDF11_WERROR=ON "$@" >/dev/null
cmake --build build -j"$(nproc)"
