#!/usr/bin/env bash
# The df11-* programs on official DFloat11 folders (the fixtures made by
# the official compressor): df11-info, df11-decode (the original files byte
# for byte), df11-encode to a container and back, df11-run (logits equal to
# the BF16 model's), df11-encode --format dfloat11 and back, errors.
# usage: tests/test_dfloat11_tools.sh SOURCE_DIR BIN_DIR
set -euo pipefail
SRC=$(cd "${1:?usage: SOURCE_DIR BIN_DIR}" && pwd)
BIN=$(cd "${2:?usage: SOURCE_DIR BIN_DIR}" && pwd)
FX="$SRC/tests/fixtures/dfloat11"
T=$(mktemp -d "${TMPDIR:-/tmp}/df11dfl.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"

. "$SRC/tests/tools_lib.sh"

echo "== df11-info"
run 0 "$BIN/df11-info" "$FX/llama/df11"
grep -q 'model.layers.1.mlp.down_proj.weight  *BF16  *\[64,172\]' out ||
	fail "df11-info: $(cat out)"
run 1 "$BIN/df11-info" "$FX/module/df11"
one_line_err model_type

echo "== df11-decode: the original checkpoint, byte for byte"
run 0 "$BIN/df11-decode" "$FX/llama/df11" -o back -j 2
diff -r back "$FX/llama/orig"
run 1 "$BIN/df11-decode" "$FX/llama/df11" -o back
one_line_err exists

echo "== df11-encode to a container and back"
run 0 "$BIN/df11-encode" "$FX/llama/df11" -o m.df11 -j 2
run 0 "$BIN/df11-decode" m.df11 -o back2
diff -r back2 "$FX/llama/orig"
run 0 "$BIN/df11-verify" m.df11 --against "$FX/llama/orig"

echo "== df11-run: the same logits as the BF16 model"
run 0 "$BIN/df11-run" "$FX/llama/df11" --tokens 1,2,3 --generate 3 \
	--dump-logits dfl.bin
run 0 "$BIN/df11-run" "$FX/llama/orig" --tokens 1,2,3 --generate 3 \
	--dump-logits bf16.bin
cmp dfl.bin bf16.bin

echo "== df11-encode --format dfloat11 and back"
run 0 "$BIN/df11-encode" "$FX/llama/orig" --format dfloat11 -o dfl -j 2
[ -f dfl/model_layers_1.safetensors ] || fail "no per-group file: $(ls dfl)"
run 0 "$BIN/df11-decode" dfl -o back3
diff -r back3 "$FX/llama/orig"
printf '{"blocks\\\\.\\\\d+": ["qkv", "proj"], "head": []}' >pd.json
run 0 "$BIN/df11-encode" "$FX/module/orig.safetensors" --format dfloat11 \
	--pattern-dict pd.json -o mod
[ -f mod/blocks_0.safetensors ] && [ -f mod/head.safetensors ] ||
	fail "module groups: $(ls mod)"
run 1 "$BIN/df11-encode" "$FX/module/orig.safetensors" --format dfloat11 -o mod2
one_line_err pattern_dict
[ ! -e mod2 ] || fail "a refused export left mod2"
run 1 "$BIN/df11-encode" "$FX/llama/orig" --format dfloat11 --pattern-dict nope.json -o x
one_line_err nope.json
run 2 "$BIN/df11-encode" "$FX/llama/orig" --format dfloat11
run 2 "$BIN/df11-encode" "$FX/llama/orig" --format zip -o x
run 2 "$BIN/df11-encode" "$FX/llama/orig" --pattern-dict pd.json -o x
! ls -a . | grep -q '\.tmp\.' || fail "temporary files left: $(ls -a)"
echo "test_dfloat11_tools: all passed"
