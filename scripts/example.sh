#!/usr/bin/env bash
# README command 1: builds df11, writes a tiny checkpoint with the
# structure of Mistral-Nemo-Instruct-2407, compresses it, verifies it
# against the original, restores it and compares byte for byte. Does the
# same with the real stories260K model (a tiny trained Llama in BF16) from
# tests/fixtures.
# DF11_BIN=DIR uses programs already built there (what ctest does).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -n "${DF11_BIN:-}" ]; then
	BIN=$DF11_BIN
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/df11example.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
else
	scripts/build.sh
	BIN=$ROOT/build/bin
	WORK=$ROOT/build/example
	rm -rf "$WORK"
	mkdir -p "$WORK"
fi

# roundtrip NAME CHECKPOINT: encode, verify against the original, decode,
# compare every file.
roundtrip() {
	local name=$1 src=$2
	echo "== $name ($src)"
	"$BIN/df11-encode" "$src" -o "$WORK/$name.df11"
	"$BIN/df11-verify" "$WORK/$name.df11" --against "$src"
	"$BIN/df11-decode" "$WORK/$name.df11" -o "$WORK/$name.restored"
	if [ -d "$src" ]; then
		diff -r "$src" "$WORK/$name.restored"
	else
		cmp "$src" "$WORK/$name.restored"
	fi
	echo "$name: every file restored byte for byte"
}

"$BIN/df11-synth" --preset tiny -o "$WORK/tiny-nemo"
roundtrip tiny-nemo "$WORK/tiny-nemo"

roundtrip stories260K "$ROOT/tests/fixtures/stories260K"
"$BIN/df11-info" "$WORK/stories260K.df11" | tail -1
echo "example: OK (outputs in $WORK)"
