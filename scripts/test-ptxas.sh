#!/usr/bin/env bash
# Compiles every CUDA kernel of the library for sm_90 with `-Xptxas -v` and
# fails on any register spill. Prints, per kernel and build configuration,
# registers, stack, shared memory and the theoretical occupancy on an
# H100/H200 (sm_90: 65536 registers, 228 KB shared memory of which at most
# 227 KB per CTA plus 1 KB the runtime reserves per CTA, 2048 threads,
# 32 CTAs and 64 warps per SM; registers allocated per warp in units of
# 256). The decode kernels are built for every CTA size
# (DF11_CUDA_CTA_LOG2 5..8) and step length (DF11_CUDA_STAGED_STEP).
# Shared memory is the static amount: a kernel that also takes dynamic
# shared memory at launch (the forward pass's attention) needs more, and a
# kernel without __launch_bounds__ gets no occupancy (its CTA size is only
# known at the launch).
#
#   bash scripts/test-ptxas.sh            (scripts/test.sh runs it)
#
# Without nvcc it says so and passes.
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-}
if [ -z "$NVCC" ]; then
	NVCC=$(command -v nvcc || true)
	[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
fi
if [ -z "$NVCC" ]; then
	echo "test-ptxas.sh: nvcc not found: CUDA resource check skipped"
	exit 0
fi
command -v python3 >/dev/null || { echo "test-ptxas.sh: python3 needed" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

FLAGS=(-std=c++17 -O3 -DNDEBUG -arch=sm_90 -I. -Iinclude)
# compile TAG SOURCE [defines...]: ptxas report and PTX of SOURCE. A
# configuration the staged kernel refuses (shared memory over 48 KB) is
# listed as such.
compile() {
	local tag=$1 src=$2
	shift 2
	if ! "$NVCC" "${FLAGS[@]}" "$@" -Xptxas -v -c "$src" -o "$TMP/$tag.o" \
		>"$TMP/$tag.ptxas" 2>&1; then
		if grep -q "shared memory over 48 KB" "$TMP/$tag.ptxas"; then
			echo "$* $src" >>"$TMP/refused"
			return 0
		fi
		cat "$TMP/$tag.ptxas" >&2
		exit 1
	fi
	"$NVCC" "${FLAGS[@]}" "$@" -ptx "$src" -o "$TMP/$tag.ptx" 2>/dev/null
	echo "$tag $src $*" >>"$TMP/list"
}

: >"$TMP/list"
: >"$TMP/refused"
for cta in 5 6 7 8; do
	for step in 8 16 32; do
		compile "decode_cta${cta}_step${step}" cuda/df11_cuda.cu \
			-DDF11K_THREADS_LOG2=$cta -DDF11K2_STEP=$step
	done
done
# Every other CUDA source of the library (not benchmarks or tests).
while IFS= read -r src; do
	[ "$src" = cuda/df11_cuda.cu ] && continue
	compile "$(echo "${src%.cu}" | tr / _)" "$src"
done < <(git ls-files '*.cu' | grep -v -E '^(benchmarks|tests|fuzz)/')

python3 - "$TMP" <<'EOF'
import math, os, re, subprocess, sys

tmp = sys.argv[1]
REGS, SMEM, SMEM_BLOCK, RESERVED = 65536, 228 * 1024, 227 * 1024, 1024
THREADS, BLOCKS, WARPS = 2048, 32, 64

def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), text=True,
                             capture_output=True, check=True).stdout.split("\n")
        return {n: re.sub(r"\(.*", "", d) for n, d in zip(names, out)}
    except Exception:
        return {n: n for n in names}

rows, bad = [], []
for line in open(os.path.join(tmp, "list")):
    tag, src, *defs = line.split()
    rep = open(os.path.join(tmp, tag + ".ptxas")).read()
    ptx = open(os.path.join(tmp, tag + ".ptx")).read()
    # Threads per CTA from __launch_bounds__ (.maxntid), per entry.
    maxntid = {}
    for m in re.finditer(r"\.entry\s+(\w+)\((.*?)\)\s*((?:\.\w+[^\n{]*\n\s*)*)\{",
                         ptx, re.S):
        t = re.search(r"\.maxntid\s+(\d+)", m.group(3))
        if t:
            maxntid[m.group(1)] = int(t.group(1))
    # Every function ptxas reports: entries and non-inlined functions.
    cur, info = None, {}
    for l in rep.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", l)
        if m:
            cur = m.group(1)
            info[cur] = {"entry": True}
            continue
        m = re.search(r"Function properties for (\w+)", l)
        if m:
            cur = m.group(1)
            info.setdefault(cur, {"entry": False})
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                      r"(\d+) bytes spill loads", l)
        if m and cur:
            info[cur].update(stack=int(m.group(1)), st=int(m.group(2)),
                             ld=int(m.group(3)))
            if int(m.group(2)) or int(m.group(3)):
                bad.append(f"{tag}: {cur}: {m.group(2)} bytes spill stores, "
                           f"{m.group(3)} bytes spill loads")
            continue
        m = re.search(r"Used (\d+) registers", l)
        if m and cur:
            sm = re.search(r"(\d+) bytes smem", l)
            info[cur].update(regs=int(m.group(1)),
                             smem=int(sm.group(1)) if sm else 0)
    names = demangle(list(info))
    for fn, d in info.items():
        if not d.get("entry"):
            continue
        threads = maxntid.get(fn)
        regs, smem = d.get("regs", 0), d.get("smem", 0)
        if threads:
            wpb = math.ceil(threads / 32)
            rpw = math.ceil(max(regs, 1) * 32 / 256) * 256
            lim = {
                "threads": THREADS // threads,
                "CTAs": BLOCKS,
                "registers": (REGS // rpw) // wpb,
                "shared memory": SMEM // (smem + RESERVED)
                if smem <= SMEM_BLOCK else 0,
            }
            blocks = min(lim.values())
            by = ", ".join(k for k, v in lim.items() if v == blocks)
            warps = min(blocks * wpb, WARPS)
            occ = f"{100.0 * warps / WARPS:5.1f}%"
            cfg = " ".join(x.replace("-D", "") for x in defs) or "-"
            rows.append((names[fn], cfg, str(threads), str(regs),
                         str(d.get("stack", 0)),
                         str(d.get("st", 0) + d.get("ld", 0)), str(smem),
                         str(blocks), str(warps), occ, by))
        else:
            rows.append((names[fn], " ".join(defs) or "-", "?", str(regs),
                         str(d.get("stack", 0)),
                         str(d.get("st", 0) + d.get("ld", 0)), str(smem),
                         "-", "-", "no __launch_bounds__", "-"))

head = ("kernel", "build", "threads", "regs", "stack", "spill B",
        "smem B", "CTAs/SM", "warps/SM", "occupancy", "limited by")
print("| " + " | ".join(head) + " |")
print("|" + "|".join(" --- " for _ in head) + "|")
for r in rows:
    print("| " + " | ".join(r) + " |")
for l in open(os.path.join(tmp, "refused")):
    print(f"\nnot buildable (shared memory over 48 KB): {l.strip()}")
if bad:
    print("\ntest-ptxas.sh: FAILED, register spills:", file=sys.stderr)
    for b in bad:
        print("  " + b, file=sys.stderr)
    sys.exit(1)
print(f"\ntest-ptxas.sh: {len(rows)} kernel builds for sm_90, no spills")
EOF
