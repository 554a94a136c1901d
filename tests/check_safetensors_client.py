#!/usr/bin/env python3
"""A real client reads what df11-decode wrote: the `safetensors` package
must load ORIGINAL and DECODED (a .safetensors file or a folder of them)
and see the same tensors, metadata and raw bytes.

numpy has no bfloat16, so tensors are compared as raw bytes through
safetensors.deserialize() (name -> dtype, shape, bytes), which parses the
file with the package's own Rust reader; tensors of numpy dtypes are also
loaded with safe_open(framework="numpy") and compared as arrays."""
import os
import sys

import numpy as np
from safetensors import deserialize, safe_open


def files(path):
    if os.path.isdir(path):
        out = []
        for root, _, names in os.walk(path):
            out += [os.path.join(root, n) for n in names
                    if n.endswith(".safetensors")]
        return sorted(os.path.relpath(p, path) for p in out), path
    return [os.path.basename(path)], os.path.dirname(path) or "."


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    tensors = {name: (t["dtype"], list(t["shape"]), bytes(t["data"]))
               for name, t in deserialize(raw)}
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        keys = set(f.keys())
        arrays = {}
        for k in keys:
            if tensors[k][0] not in ("BF16", "F8_E4M3", "F8_E5M2"):
                arrays[k] = f.get_tensor(k)
    assert keys == set(tensors), path
    return tensors, meta, arrays


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_safetensors_client.py ORIGINAL DECODED")
    (fa, da), (fb, db) = files(sys.argv[1]), files(sys.argv[2])
    if not os.path.isdir(sys.argv[1]):
        fb = [os.path.basename(sys.argv[2])]
    if len(fa) != len(fb) or not fa:
        sys.exit(f"FAIL: {len(fa)} vs {len(fb)} safetensors files")
    n = nbytes = 0
    for a, b in zip(fa, fb):
        ta, ma, _ = load(os.path.join(da, a))
        tb, mb, arr = load(os.path.join(db, b))
        if ma != mb:
            sys.exit(f"FAIL: {b}: metadata differs")
        if set(ta) != set(tb):
            sys.exit(f"FAIL: {b}: tensor names differ")
        for k in ta:
            if ta[k] != tb[k]:
                sys.exit(f"FAIL: {b}: tensor {k} differs")
            if k in arr:
                want = np.frombuffer(ta[k][2], dtype=arr[k].dtype)
                if arr[k].tobytes() != want.tobytes():
                    sys.exit(f"FAIL: {b}: numpy view of {k} differs")
            n += 1
            nbytes += len(ta[k][2])
    print(f"safetensors client: {n} tensors, {nbytes} bytes identical "
          f"in {len(fa)} file(s)")


if __name__ == "__main__":
    main()
