#!/usr/bin/env bash
# The df11-* programs end to end: round trips of files and sharded folders
# compared byte for byte, a real safetensors client reading what
# df11-decode wrote, exit codes, one-line errors, no partial outputs
# (also when interrupted), deterministic df11-synth.
# usage: tests/test_tools.sh BIN_DIR
set -euo pipefail
BIN=$(cd "${1:?usage: test_tools.sh BIN_DIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/df11tools.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"

. "$HERE/tools_lib.sh"
no_temp() { ! ls -a "${1:-.}" | grep -q '\.tmp\.' || fail "temporary files left: $(ls -a "${1:-.}")"; }

echo "== --help and usage errors"
for t in encode decode verify info synth; do
	run 0 "$BIN/df11-$t" --help
	grep -q usage out || fail "df11-$t --help"
done
run 2 "$BIN/df11-encode"
run 2 "$BIN/df11-decode" x.df11
run 2 "$BIN/df11-verify"
run 2 "$BIN/df11-synth" --preset nope -o x
run 2 "$BIN/df11-encode" -j x in

echo "== df11-synth is deterministic"
run 0 "$BIN/df11-synth" --preset tiny -o tiny -j 1
run 0 "$BIN/df11-synth" --preset tiny -o tiny2 -j 3
cmp tiny/model.safetensors tiny2/model.safetensors || fail "synth differs across -j"
run 0 "$BIN/df11-synth" --preset tiny -o tiny3 --seed 2
cmp -s tiny/model.safetensors tiny3/model.safetensors && fail "seed ignored"
grep -q '"num_hidden_layers": 2' tiny/config.json || fail "tiny config"
grep -q '"architectures"' tiny/config.json || fail "config fields"
[ ! -e tiny/model.safetensors.index.json ] || fail "small model got an index"
run 1 "$BIN/df11-synth" --preset tiny -o tiny
one_line_err tiny
rm -rf tiny2 tiny3

echo "== single file round trip"
run 0 "$BIN/df11-encode" tiny/model.safetensors -o t.df11
grep -q "bits per BF16 weight" out || fail "no summary line"
run 0 "$BIN/df11-verify" t.df11 --against tiny/model.safetensors
run 0 "$BIN/df11-decode" t.df11 -o t.safetensors
cmp tiny/model.safetensors t.safetensors
python3 "$HERE/check_safetensors_client.py" tiny/model.safetensors t.safetensors
# Outputs are readable by all, as other programs' outputs are.
for f in t.df11 t.safetensors; do
	[ "$(stat -c %a "$f")" = 644 ] || fail "$f: mode $(stat -c %a "$f"), not 644"
done
# Default output name: INPUT without .safetensors, plus .df11.
run 0 "$BIN/df11-encode" tiny/model.safetensors
[ -f tiny/model.df11 ] || fail "default output name"
rm tiny/model.df11

echo "== every dtype, written by the safetensors package itself"
python3 - <<'PY'
import numpy as np
import safetensors
from safetensors import serialize_file
rng = np.random.default_rng(1)
bf = (rng.standard_normal(5000).astype(np.float32) * 0.02).view(np.uint32)
bf16 = ((bf + 0x7fff + ((bf >> 16) & 1)) >> 16).astype(np.uint16)
# dtype names as the package takes them (torch spelling).
t = {
  "bf16": ("bfloat16", [50, 100], bf16.tobytes()),
  "scalar": ("bfloat16", [], bf16[:1].tobytes()),
  "zero": ("bfloat16", [0, 3], b""),
  "f32": ("float32", [7], np.arange(7, dtype=np.float32).tobytes()),
  "f16": ("float16", [3], np.ones(3, np.float16).tobytes()),
  "f64": ("float64", [2], np.ones(2).tobytes()),
  "i64": ("int64", [1, 2], np.array([[1, -2]]).tobytes()),
  "i32": ("int32", [2], np.array([3, 4], np.int32).tobytes()),
  "i16": ("int16", [1], np.array([5], np.int16).tobytes()),
  "i8": ("int8", [3], np.array([1, 2, 3], np.int8).tobytes()),
  "u8": ("uint8", [5], bytes(range(5))),
  "u16": ("uint16", [1], b"\x01\x02"),
  "u32": ("uint32", [1], b"\x01\x02\x03\x04"),
  "u64": ("uint64", [1], bytes(8)),
  "bool": ("bool", [2], b"\x01\x00"),
  "f8a": ("float8_e4m3fn", [2], b"\x38\x40"),
  "f8b": ("float8_e5m2", [2], b"\x3c\x40"),
}
meta = {"format": "pt", "note": "x"}
if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.7
    keep = {k: np.frombuffer(v[2] + b"\0", np.uint8).copy() for k, v in t.items()}
    spec = {k: safetensors.TensorSpec(dtype=v[0], shape=v[1],
                                      data_ptr=keep[k].ctypes.data,
                                      data_len=len(v[2])) for k, v in t.items()}
    serialize_file(spec, "mixed.safetensors", metadata=meta)
else:
    serialize_file({k: {"dtype": v[0], "shape": v[1], "data": v[2]}
                    for k, v in t.items()}, "mixed.safetensors", metadata=meta)
PY
run 0 "$BIN/df11-encode" mixed.safetensors -o mixed.df11
run 0 "$BIN/df11-decode" mixed.df11 -o mixed2.safetensors
cmp mixed.safetensors mixed2.safetensors
python3 "$HERE/check_safetensors_client.py" mixed.safetensors mixed2.safetensors
run 0 "$BIN/df11-info" mixed.df11
grep -q "^bf16 .*BF16" out || fail "info lists bf16"
grep -q "^total: 17 tensors" out || fail "info totals: $(tail -1 out)"
run 0 "$BIN/df11-info" mixed.df11 --json
python3 -c "import json,sys; d=json.load(open('out')); assert len(d['tensors'])==17 and d['totals']['tensors']==17" || fail "info --json"

echo "== sharded folder round trip"
run 0 "$BIN/df11-synth" --preset tiny --layers 3 --shard-bytes 100000 -o shard
ls shard | grep -q 'model-00001-of-0000[2-9].safetensors' || fail "no shards: $(ls shard)"
[ -f shard/model.safetensors.index.json ] || fail "no index"
echo '{"added_tokens": []}' > shard/tokenizer.json
mkdir shard/original && echo '{"dim": 64}' > shard/original/params.json
run 0 "$BIN/df11-encode" shard -o shard.df11 -j 2
run 0 "$BIN/df11-verify" shard.df11 --against shard
run 0 "$BIN/df11-info" shard.df11
run 0 "$BIN/df11-info" shard
run 0 "$BIN/df11-decode" shard.df11 -o shard.back -j 2
diff -r shard shard.back || fail "folder differs"
python3 "$HERE/check_safetensors_client.py" shard shard.back

echo "== verify exit codes and names"
# Flip one bit inside the payload of the second-largest tensor.
python3 - <<'PY'
import struct
b = bytearray(open("shard.df11", "rb").read())
d_off, d_size = struct.unpack_from("<QQ", b, len(b) - 64 + 8)
nf, nt = struct.unpack_from("<QQ", b, len(b) - 64 + 32)
p = d_off
for _ in range(nf):
    nl = struct.unpack_from("<I", b, p + 4)[0]
    p += 48 + nl
recs = []
for _ in range(nt):
    nl = struct.unpack_from("<I", b, p + 8)[0]
    nd = b[p + 6]
    off, ln = struct.unpack_from("<QQ", b, p + 32)
    name = bytes(b[p + 64 + 8 * nd:p + 64 + 8 * nd + nl]).decode()
    recs.append((ln, off, name))
    p += 64 + 8 * nd + nl
recs.sort()
ln, off, name = recs[-2]
b[off + ln // 2] ^= 0x04
open("flip.df11", "wb").write(b)
open("flip.name", "w").write(name)
PY
run 1 "$BIN/df11-verify" flip.df11
grep -q "FAIL $(cat flip.name):" err || fail "verify did not name $(cat flip.name): $(cat err)"
run 1 "$BIN/df11-decode" flip.df11 -o flip.out
[ ! -e flip.out ] || fail "decode wrote output from a corrupt file"
no_temp
run 2 "$BIN/df11-verify" missing.df11
one_line_err missing.df11
cp -r shard shard.mod
f=$(ls shard.mod/model-00001-of-*.safetensors)
printf '\x01' | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") - 100)) conv=notrunc status=none
run 1 "$BIN/df11-verify" shard.df11 --against shard.mod
grep -q "FAIL" err || fail "against: no failure named"
rm -rf shard.mod

echo "== malformed input: one line, non-zero, no output"
printf 'short' > bad.safetensors
run 1 "$BIN/df11-encode" bad.safetensors -o bad.df11
one_line_err bad.safetensors
[ ! -e bad.df11 ] || fail "output written for bad input"
python3 -c "
import struct; h=b'{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,6]}}'
open('bad2.safetensors','wb').write(struct.pack('<Q',len(h))+h+bytes(6))"
run 1 "$BIN/df11-encode" bad2.safetensors -o bad.df11
one_line_err bad2.safetensors
run 1 "$BIN/df11-decode" bad2.safetensors -o bad.out
[ ! -e bad.df11 ] && [ ! -e bad.out ] || fail "output written for bad input"
head -c 3000 t.df11 > trunc.df11
run 1 "$BIN/df11-decode" trunc.df11 -o trunc.out
one_line_err trunc.df11
run 1 "$BIN/df11-verify" trunc.df11
no_temp

echo "== existing outputs"
cp t.df11 keep.df11
run 1 "$BIN/df11-encode" tiny/model.safetensors -o keep.df11
one_line_err keep.df11
cmp t.df11 keep.df11
run 1 "$BIN/df11-decode" t.df11 -o t.safetensors
run 0 "$BIN/df11-decode" t.df11 -o t.safetensors --force
run 0 "$BIN/df11-decode" shard.df11 -o shard.back --force
diff -r shard shard.back
no_temp

echo "== interrupted runs leave nothing behind"
"$BIN/df11-synth" --preset small -o big -j 1 >/dev/null 2>err & pid=$!
sleep 1
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
[ $rc -eq 130 ] || fail "synth interrupted: exit $rc: $(cat err)"
[ ! -e big ] || fail "synth left its output"
no_temp
run 0 "$BIN/df11-synth" --preset small --layers 2 -o mid -j 2
for tool in encode decode; do
	if [ $tool = encode ]; then args=(mid -o mid.df11 -j 1); out=mid.df11
	else args=(mid.df11 -o mid.back -j 1); out=mid.back; fi
	"$BIN/df11-$tool" "${args[@]}" >/dev/null 2>err & pid=$!
	sleep 0.3
	kill -INT $pid 2>/dev/null || true
	set +e; wait $pid; rc=$?; set -e
	if [ $rc -eq 130 ]; then
		[ ! -e $out ] || fail "$tool interrupted but left $out"
	elif [ $rc -eq 0 ]; then
		echo "   ($tool finished before the signal)"
	else
		fail "$tool: exit $rc: $(cat err)"
	fi
	no_temp
	[ -e $out ] || run 0 "$BIN/df11-$tool" "${args[@]}"
done
diff -r mid mid.back
echo "test_tools: all passed"
