#!/usr/bin/env bash
# BF16 vs DF11 forward pass on one GPU, full-size synthetic Mistral-Nemo-12B.
#
#   benchmarks/bench_forward.sh [WORKDIR]
#
# Makes (once) a synthetic nemo-12b checkpoint with df11-synth and its .df11
# container with df11-encode in WORKDIR (default $DF11_BENCH_DIR or
# /tmp/df11-bench-nemo; about 41 GB of disk), checks that both modes give
# bit-identical logits and tokens, then times both with df11-run and prints
# one Markdown table: weights, post-load and peak GiB, time to first token
# p50/p95 for 512- and 2048-token prompts, prefill tokens/s, decode tokens/s
# at batch 1, 8 and 32 (128 prompt + 128 new tokens each), and the ratios
# against the targets. Raw JSON lines go to WORKDIR/bench_forward.log.
#
# Environment: REPEAT (timed runs per point, default 5), WARMUP (default 1),
# BIN (programs, default build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-${DF11_BENCH_DIR:-/tmp/df11-bench-nemo}}
REPEAT=${REPEAT:-5}
WARMUP=${WARMUP:-1}
BIN=${BIN:-build/bin}
JOBS=$(nproc)

die() { echo "bench_forward.sh: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null 2>&1 || die "no GPU here (nvidia-smi not found)"
nvidia-smi -L >/dev/null 2>&1 || die "no GPU here (nvidia-smi -L failed)"
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read the results"
[ -x "$BIN/df11-run" ] || scripts/build.sh
for p in df11-run df11-synth df11-encode; do
	[ -x "$BIN/$p" ] || die "$BIN/$p is missing (build first)"
done

mkdir -p "$WORK"
SRC="$WORK/nemo-12b"
CT="$WORK/nemo-12b.df11"
LOG="$WORK/bench_forward.log"
: > "$LOG"
if [ ! -f "$SRC/config.json" ]; then
	echo "== df11-synth --preset nemo-12b -> $SRC" >&2
	"$BIN/df11-synth" --preset nemo-12b -o "$SRC" -j "$JOBS"
fi
if [ ! -f "$CT" ]; then
	echo "== df11-encode -> $CT" >&2
	"$BIN/df11-encode" "$SRC" -o "$CT" -j "$JOBS"
fi

# N deterministic token ids in [3, 131072), comma-separated.
prompt() {
	awk -v n="$1" -v seed="${2:-1}" 'BEGIN {
		x = seed; s = "";
		for (i = 0; i < n; i++) {
			x = (x * 1103515245 + 12345) % 2147483648;
			s = s (i ? "," : "") (3 + int(x / 16) % 131069);
		}
		print s }'
}

# run MODE (bf16|df11) ARGS...: df11-run on the GPU; its JSON lines go to
# the log, tagged with a label, and its stdout (tokens) to stdout.
run() {
	local mode=$1 label=$2
	shift 2
	local model=$CT
	[ "$mode" = bf16 ] && model=$SRC
	local err
	err=$(mktemp)
	if ! "$BIN/df11-run" "$model" --device cuda --weights "$mode" --stats "$@" 2>"$err"; then
		cat "$err" >&2
		rm -f "$err"
		die "df11-run ($mode, $label) failed"
	fi
	sed "s/^{/{\"label\": \"$label\", \"mode\": \"$mode\", /" "$err" >> "$LOG"
	rm -f "$err"
}

echo "== machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)" >&2

# 1. Check before timing: same logits (every prompt position), same tokens.
P16=$(prompt 16 7)
run bf16 check --tokens "$P16" --generate 16 --dump-logits "$WORK/logits.bf16" > "$WORK/tokens.bf16"
run df11 check --tokens "$P16" --generate 16 --dump-logits "$WORK/logits.df11" > "$WORK/tokens.df11"
cmp -s "$WORK/logits.bf16" "$WORK/logits.df11" || die "DF11 logits differ from BF16 logits"
cmp -s "$WORK/tokens.bf16" "$WORK/tokens.df11" || die "DF11 tokens differ from BF16 tokens"
echo "== check: DF11 logits and tokens identical to BF16, bit for bit" >&2

# 2. Time both modes.
P512=$(prompt 512 11)
P2048=$(prompt 2048 13)
P128=$(prompt 128 17)
for mode in bf16 df11; do
	echo "== $mode" >&2
	run "$mode" ttft512 --tokens "$P512" --generate 1 --repeat "$REPEAT" --warmup "$WARMUP" > /dev/null
	run "$mode" ttft2048 --tokens "$P2048" --generate 1 --repeat "$REPEAT" --warmup "$WARMUP" > /dev/null
	for b in 1 8 32; do
		run "$mode" "decode$b" --tokens "$P128" --generate 128 --batch "$b" \
			--repeat "$REPEAT" --warmup "$WARMUP" > /dev/null
	done
done

# 3. The table.
python3 - "$LOG" "$SRC/config.json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cfg = json.load(open(sys.argv[2]))
G = 2 ** 30
stats, mem = {}, {}
for r in rows:
    key = (r["label"], r["mode"])
    if "memory" in r:
        mem[key] = r["memory"]
    else:
        stats[key] = r
def peak(mode):
    return max(m["peak"] for (l, md), m in mem.items() if md == mode)
H, I = cfg["hidden_size"], cfg["intermediate_size"]
hd = cfg.get("head_dim") or H // cfg["num_attention_heads"]
qd, kvd = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
layer_bytes = 2 * ((qd + 2 * kvd) * H + H * qd + 3 * I * H + 2 * H)
out = []
def row(name, b, d, ratio=None, target=""):
    out.append(f"| {name} | {b} | {d} | {ratio if ratio is not None else ''} | {target} |")
w_b, w_d = mem[("ttft512", "bf16")]["weights"], mem[("ttft512", "df11")]["weights"]
row("weights GiB", f"{w_b / G:.2f}", f"{w_d / G:.2f}", f"{w_d / w_b:.3f}", "<= 0.68")
pl_b, pl_d = mem[("ttft512", "bf16")]["post_load"], mem[("ttft512", "df11")]["post_load"]
row("post-load GiB", f"{pl_b / G:.2f}", f"{pl_d / G:.2f}", f"{pl_d / pl_b:.3f}")
row("peak GiB", f"{peak('bf16') / G:.2f}", f"{peak('df11') / G:.2f}", f"{peak('df11') / peak('bf16'):.3f}")
scr = mem[("ttft512", "df11")]["scratch"]
row("decode scratch GiB", "0", f"{scr / G:.3f}", f"{scr / layer_bytes:.2f} layers", "<= 2 layers")
for n in (512, 2048):
    b, d = stats[(f"ttft{n}", "bf16")], stats[(f"ttft{n}", "df11")]
    row(f"TTFT p50 / p95 ms, {n}-token prompt",
        f"{b['ttft_ms_p50']:.1f} / {b['ttft_ms_p95']:.1f}",
        f"{d['ttft_ms_p50']:.1f} / {d['ttft_ms_p95']:.1f}",
        f"{d['ttft_ms_p50'] / b['ttft_ms_p50']:.3f}")
b, d = stats[("ttft2048", "bf16")], stats[("ttft2048", "df11")]
row("prefill tokens/s (2048)", f"{b['prefill_tok_s']:.0f}", f"{d['prefill_tok_s']:.0f}",
    f"{b['prefill_tok_s'] / d['prefill_tok_s']:.3f} (time)", "<= 1.1")
for bs, target in ((1, "<= 1.5"), (8, ""), (32, "<= 1.1")):
    b, d = stats[(f"decode{bs}", "bf16")], stats[(f"decode{bs}", "df11")]
    row(f"decode tokens/s, batch {bs}", f"{b['decode_tok_s']:.1f}", f"{d['decode_tok_s']:.1f}",
        f"{b['decode_tok_s'] / d['decode_tok_s']:.3f} (time/token)", target)
print("| nemo-12b (synthetic) | BF16 | DF11 | DF11 / BF16 | target |")
print("| --- | --- | --- | --- | --- |")
print("\n".join(out))
print(f"\nmedians (p95 where stated) of {rows[-1].get('runs', '?')} timed runs each; "
      "decode: 128 prompt + 128 new tokens per sequence")
EOF
