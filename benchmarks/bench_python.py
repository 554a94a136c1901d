#!/usr/bin/env python3
"""The df11 Python package against the C API, and compress_model's memory.

1. Codec: df11.encode / df11.decode on one synthetic Nemo-shaped BF16
   matrix (gate_proj, 14336 x 5120 by default), beside bench_tensor (the C
   API alone) on the same tensor, read from the same .safetensors file.
   Two output policies, timed the same way on both sides: "fresh" (a new
   output per call: df11.encode's bytes, df11.decode's array; malloc/free
   in C) and "reuse" (df11.encode_into / df11.decode(out=...); one buffer
   in C). C and Python alternate run by run (--runs pairs); overhead =
   median over the pairs of Python time / C time - 1.
2. Memory: df11.torch.compress_model on stories260K (transformers
   LlamaForCausalLM) and on a synthetic stack of Nemo-shaped layers
   (hidden 5120, q 4096, k/v 1024, MLP 14336; --layers): bytes of
   parameters and buffers before and after, the shared scratch buffer,
   process RSS, outputs compared bit for bit, CPU forward time BF16 vs
   DF11 (median of --runs).

usage: python3 benchmarks/bench_python.py [--bench-tensor build/bin/bench_tensor]
           [--rows 14336] [--cols 5120] [--runs 9]
           [--threads N] [--layers 2] [--skip-codec] [--skip-memory]
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import ml_dtypes
import numpy as np

import df11

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def synth_matrix(rng, rows, cols, std):
    """BF16 words with a checkpoint's look: per-row scale spread, a heavy
    tail, a few outliers."""
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    x *= (std * np.exp(rng.normal(0.0, 0.35, rows)).astype(np.float32))[:, None]
    k = max(1, x.size // 20000)
    idx = rng.integers(0, x.size, k)
    x.reshape(-1)[idx] *= 20.0
    return x.astype(ml_dtypes.bfloat16).view(np.uint16)


def median_time(fn, runs):
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


# ------------------------------------------------------------------ codec

class PythonCodec:
    """df11.encode / df11.decode on one tensor, one run of each operation
    per call, in bench_tensor's order."""

    def __init__(self, words, threads):
        self.words, self.threads = words, threads
        self.enc = df11.encode(words, threads=threads)
        assert np.array_equal(df11.decode(self.enc, threads=threads),
                              words.ravel())
        self.ebuf = np.empty(df11.encode_bound(words.size), np.uint8)
        self.dbuf = np.empty(words.size, np.uint16)

    def run(self):
        w, t, enc = self.words, self.threads, self.enc
        r = {}
        t0 = time.perf_counter()
        df11.encode_into(w, self.ebuf, threads=t)
        r["encode_reuse_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        e = df11.encode(w, threads=t)
        r["encode_fresh_s"] = time.perf_counter() - t0
        del e
        t0 = time.perf_counter()
        df11.decode(enc, threads=t, out=self.dbuf)
        r["decode_reuse_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        d = df11.decode(enc, threads=t)
        r["decode_fresh_s"] = time.perf_counter() - t0
        del d
        r["encoded_bytes"] = len(enc)
        return r


def c_codec(exe, path, name, threads, runs):
    out = subprocess.run([exe, path, name, "--runs", str(runs), "--threads",
                          str(threads)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


KEYS = ("encode_fresh_s", "encode_reuse_s", "decode_fresh_s",
        "decode_reuse_s")


def bench_codec(args):
    """C and Python alternate run by run (the C side is one bench_tensor
    process with --runs 1, after its warm-up), so that both see the same
    machine load; the overhead is the median of the paired ratios."""
    import safetensors.torch
    import torch
    rng = np.random.default_rng(7)
    words = synth_matrix(rng, args.rows, args.cols, 0.018)
    nbytes = words.size * 2
    print("## Codec: %d x %d BF16 (%.1f MiB), %d paired runs (C, Python), "
          "medians" % (args.rows, args.cols, nbytes / 2**20, args.runs))
    print()
    print("| threads | op | output | C GB/s | Python GB/s | overhead "
          "(median of pairs) |")
    print("|---:|---|---|---:|---:|---:|")
    rows = []
    med = statistics.median
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.safetensors")
        safetensors.torch.save_file(
            {"w": torch.from_numpy(words.view(np.int16)).view(torch.bfloat16)},
            path)
        for threads in args.threads:
            py = PythonCodec(words, threads)
            pairs = {k: [] for k in KEYS}
            for _ in range(args.runs):
                c = c_codec(args.bench_tensor, path, "w", threads, 1)
                p = py.run()
                assert c["encoded_bytes"] == p["encoded_bytes"]
                for k in KEYS:
                    pairs[k].append((c[k], p[k]))
            for k in KEYS:
                op, pol = k.split("_")[:2]
                c_gbs = nbytes / med(c for c, _ in pairs[k]) / 1e9
                p_gbs = nbytes / med(p for _, p in pairs[k]) / 1e9
                ov = med(p / c - 1 for c, p in pairs[k])
                rows.append((threads, op, pol, c_gbs, p_gbs, ov))
                print("| %d | %s | %s | %.2f | %.2f | %+.1f%% |"
                      % (threads, op, pol, c_gbs, p_gbs, 100 * ov))
            ratio = py.run()["encoded_bytes"] / nbytes
    print()
    print("(encoded: %.1f%% of BF16; GB/s of BF16 bytes)" % (100 * ratio))
    print()
    per_call_cost(args, rows)
    return rows


def per_call_cost(args, rows):
    """The binding's fixed cost per call, which machine load hides on a
    large tensor: C and Python on a 256-element tensor, medians of 2000
    calls, one thread. The difference over the C time of the large tensor
    bounds the overhead there."""
    import safetensors.torch
    import torch
    words = synth_matrix(np.random.default_rng(5), 16, 16, 0.02)
    n = 2000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.safetensors")
        safetensors.torch.save_file(
            {"w": torch.from_numpy(words.view(np.int16)).view(torch.bfloat16)},
            path)
        c = c_codec(args.bench_tensor, path, "w", 1, 1000)
    py = PythonCodec(words, 1)
    runs = [py.run() for _ in range(n)]
    big = {(op, pol): nbytes_gbs for _, op, pol, nbytes_gbs, _, _ in
           [r for r in rows if r[0] == 1]}
    nbytes = args.rows * args.cols * 2
    print("### Fixed cost per call (256 BF16 values, 1 thread, medians)")
    print()
    print("| op | output | C | Python | Python - C | share of a %d x %d "
          "call (1 thread) |" % (args.rows, args.cols))
    print("|---|---|---:|---:|---:|---:|")
    for k in KEYS:
        op, pol = k.split("_")[:2]
        p = statistics.median(r[k] for r in runs)
        extra = p - c[k]
        big_s = nbytes / (big[(op, pol)] * 1e9) if (op, pol) in big else 0
        print("| %s | %s | %.1f us | %.1f us | %+.1f us | %s |"
              % (op, pol, 1e6 * c[k], 1e6 * p, 1e6 * extra,
                 "%.3f%%" % (100 * extra / big_s) if big_s else "-"))
    print()


# ----------------------------------------------------------------- memory

def forward_time(model, x, runs):
    import torch
    with torch.inference_mode():
        model(x)  # warm-up
        return median_time(lambda: model(x), runs)


def same_bits(a, b):
    import torch
    return (a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().view(torch.int16), b.contiguous().view(torch.int16)))


def report(name, stats, rss0, rss1, rss2, t_bf16, t_df11, identical, what):
    mib = 2**20
    print("### %s" % name)
    print()
    print("| | BF16 | DF11 |")
    print("|---|---:|---:|")
    print("| parameters + buffers | %.2f MiB | %.2f MiB (%.1f%%) |"
          % (stats.before_bytes / mib, stats.after_bytes / mib,
             100 * stats.after_bytes / stats.before_bytes))
    print("| compressed weights (%d) | %.2f MiB | %.2f MiB (%.1f%%) |"
          % (stats.n_compressed, stats.weights_before_bytes / mib,
             stats.weights_after_bytes / mib,
             100 * stats.weights_after_bytes / stats.weights_before_bytes))
    print("| shared scratch buffer | | %.2f MiB |" % (stats.scratch_bytes / mib))
    print("| process RSS | %.1f MiB | %.1f MiB after compress_model, "
          "%.1f MiB after a forward pass |" % (rss0 / mib, rss1 / mib,
                                                rss2 / mib))
    print("| CPU forward, %s (median) | %.2f ms | %.2f ms (x%.2f) |"
          % (what, 1e3 * t_bf16, 1e3 * t_df11, t_df11 / t_bf16))
    print("| output bit-identical | | %s |" % ("yes" if identical else "NO"))
    print()


def bench_stories(args):
    import torch
    import df11.torch
    from transformers import AutoModelForCausalLM
    path = os.path.join(ROOT, "tests/fixtures/stories260K")
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
    ids = torch.arange(1, 65).unsqueeze(0) % 512
    gc.collect()
    rss0 = rss_bytes()
    with torch.inference_mode():
        want = m(ids).logits
    t_bf16 = forward_time(m, ids, args.runs)
    stats = df11.torch.compress_model(m)
    gc.collect()
    rss1 = rss_bytes()
    with torch.inference_mode():
        got = m(ids).logits
    rss2 = rss_bytes()
    t_df11 = forward_time(m, ids, args.runs)
    report("stories260K (LlamaForCausalLM, tied embeddings)", stats, rss0,
           rss1, rss2, t_bf16, t_df11, same_bits(want, got), "64 tokens")


def bench_nemo_stack(args):
    import torch
    from torch import nn
    import df11.torch

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            h, q, kv, f = 5120, 4096, 1024, 14336
            self.q_proj = nn.Linear(h, q, bias=False)
            self.k_proj = nn.Linear(h, kv, bias=False)
            self.v_proj = nn.Linear(h, kv, bias=False)
            self.o_proj = nn.Linear(q, h, bias=False)
            self.gate_proj = nn.Linear(h, f, bias=False)
            self.up_proj = nn.Linear(h, f, bias=False)
            self.down_proj = nn.Linear(f, h, bias=False)

        def forward(self, x):
            kv = self.k_proj(x).sum(-1, keepdim=True) + self.v_proj(x).sum(
                -1, keepdim=True)
            x = x + self.o_proj(self.q_proj(x)) * 0.5 + kv * 1e-3
            g = nn.functional.silu(self.gate_proj(x)) * self.up_proj(x)
            return x + self.down_proj(g)

    stds = {"q_proj": 0.020, "k_proj": 0.025, "v_proj": 0.012,
            "o_proj": 0.010, "gate_proj": 0.018, "up_proj": 0.015,
            "down_proj": 0.010}
    rng = np.random.default_rng(11)
    with torch.device("meta"):
        model = nn.Sequential(*[Layer() for _ in range(args.layers)])
    for layer in model:
        for name, std in stds.items():
            lin = getattr(layer, name)
            w = synth_matrix(rng, lin.out_features, lin.in_features, std)
            lin.weight = nn.Parameter(torch.from_numpy(w.view(np.int16))
                                      .view(torch.bfloat16),
                                      requires_grad=False)
            del w
    model.eval()
    x = (torch.randn(1, 8, 5120, generator=torch.Generator().manual_seed(3))
         * 0.5).to(torch.bfloat16)
    gc.collect()
    rss0 = rss_bytes()
    with torch.inference_mode():
        want = model(x)
    t_bf16 = forward_time(model, x, args.runs)
    stats = df11.torch.compress_model(model)
    gc.collect()
    rss1 = rss_bytes()
    with torch.inference_mode():
        got = model(x)
    rss2 = rss_bytes()
    t_df11 = forward_time(model, x, args.runs)
    report("Nemo-shaped layer stack, %d layers x 7 matrices" % args.layers,
           stats, rss0, rss1, rss2, t_bf16, t_df11, same_bits(want, got),
           "8 tokens")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-tensor",
                    default=os.path.join(ROOT, "build/bin/bench_tensor"))
    ap.add_argument("--rows", type=int, default=14336)
    ap.add_argument("--cols", type=int, default=5120)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--threads", type=int, nargs="+",
                    default=sorted({1, df11._core.default_threads()}))
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--skip-codec", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    import platform
    print("# bench_python: df11 %s (%s), Python %s, %s, %d CPUs"
          % (df11.__version__, df11.library_path, platform.python_version(),
             platform.machine(), os.cpu_count()))
    print()
    if not args.skip_codec:
        if not os.access(args.bench_tensor, os.X_OK):
            sys.exit("bench_python: %s not built (scripts/build.sh)"
                     % args.bench_tensor)
        bench_codec(args)
    if not args.skip_memory:
        import torch
        torch.set_num_threads(max(args.threads))
        print("## compress_model memory (torch %s, %d threads)"
              % (torch.__version__, torch.get_num_threads()))
        print()
        bench_stories(args)
        bench_nemo_stack(args)


if __name__ == "__main__":
    main()
