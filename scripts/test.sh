#!/usr/bin/env bash
# Builds and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)")
# The Python package, built from this tree, against its real clients.
python3 -m pip install -q --disable-pip-version-check ./python 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check --break-system-packages ./python
HF_HUB_OFFLINE=1 python3 -m pytest -q -p no:cacheprovider python/tests
# Extra suites (sanitizer build, fuzzers) add themselves here.
for extra in scripts/test-*.sh; do
  [ -e "$extra" ] || continue
  echo "== $extra"
  bash "$extra"
done
