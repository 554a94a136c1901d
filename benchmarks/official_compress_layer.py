#!/usr/bin/env python3
"""Times the official DFloat11 compressor (the `dfloat11` package's
compress_model, check_correctness=False, on a CPU) on one decoder layer.

    official_compress_layer.py SYNTH_DIR [--layer N] [--repeat R]

The layer's seven projections (q, k, v, o, gate, up, down) are read from a
checkpoint folder (bench_dfloat11_export makes a synthetic nemo-12b one) into
a module of Linear layers, then compressed as one group with the pattern_dict
the official releases use for decoder layers. Prints one JSON line: seconds
of each run, elements, stored bytes.

Requires: pip install dfloat11==0.5.0 dahuffman==0.4.2 torch transformers
accelerate (the package imports them; no GPU is needed, see
tests/fixtures/dfloat11_standin.py).
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
import dfloat11_standin  # noqa: E402

dfloat11_standin.install()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from dfloat11 import compress_model  # noqa: E402
from safetensors import safe_open  # noqa: E402

ATTRS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
         "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def load(folder, layer):
    want = {f"model.layers.{layer}.{a}.weight": a for a in ATTRS}
    got = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), "pt") as s:
                for k in s.keys():
                    if k in want:
                        got[want[k]] = s.get_tensor(k)
    assert len(got) == len(ATTRS), sorted(got)
    return got


def build(weights):
    root = nn.Module()
    root.layer = nn.Module()
    root.layer.self_attn = nn.Module()
    root.layer.mlp = nn.Module()
    for a, w in weights.items():
        parent, child = a.split(".")
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False, device="meta")
        lin.weight = nn.Parameter(w.clone(), requires_grad=False)
        setattr(getattr(root.layer, parent), child, lin)
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    weights = load(a.folder, a.layer)
    n = sum(w.numel() for w in weights.values())
    runs, stored = [], 0
    for _ in range(a.repeat):
        model = build(weights)
        out = tempfile.mkdtemp()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            compress_model(model, pattern_dict={r"layer": ATTRS},
                           save_path=out, save_single_file=True,
                           check_correctness=False)
        runs.append(time.perf_counter() - t0)
        stored = os.path.getsize(os.path.join(out, "model.safetensors"))
        shutil.rmtree(out)
    print(json.dumps({"seconds": runs, "elements": n, "stored_bytes": stored}))


if __name__ == "__main__":
    main()
