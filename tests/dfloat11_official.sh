#!/bin/sh
# The official dfloat11 loader on a folder df11-encode --format dfloat11
# wrote from the Llama fixture: logits identical to the BF16 model
# (tests/fixtures/check_official_loader.py, decode kernel modelled on the
# CPU). Skipped (77) where Python lacks dfloat11, torch or transformers.
set -eu
src="$1"
bin="$2"
python3 - <<'PY' || exit 77
import importlib.util, sys
sys.exit(0 if all(importlib.util.find_spec(m) for m in
                  ("dfloat11", "torch", "transformers", "accelerate"))
         else 1)
PY
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin/df11-encode" "$src/tests/fixtures/dfloat11/llama/orig" --format dfloat11 \
  -o "$tmp/dfl" -j 2 >/dev/null
python3 "$src/tests/fixtures/check_official_loader.py" "$tmp/dfl" \
  "$src/tests/fixtures/dfloat11/llama/orig"
