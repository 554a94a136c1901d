"""df11: lossless compression of BF16 weights, for numpy, PyTorch and
transformers.

    import df11
    data = df11.encode(weights)            # numpy uint16/bfloat16 or torch bf16
    bits = df11.decode(data)               # 1-D uint16, every bit restored
    with df11.safe_open("model.df11", framework="pt") as f:
        w = f.get_tensor("model.embed_tokens.weight")

``df11.torch`` (load_file, compress_model, load_model) and ``df11.numpy``
(load_file) mirror safetensors.torch and safetensors.numpy.
"""

import importlib

from . import _lib
from ._core import (Error, Checkpoint, TensorDesc, safe_open, encode,
                    encode_into, encode_bound, decode, decode_reference, info,
                    pack, unpack, verify)

__version__ = _lib.lib.df11_version_string().decode("ascii")
version_number = _lib.lib.df11_version_number()
library_path = _lib.path

__all__ = ["__version__", "Error", "Checkpoint", "TensorDesc", "safe_open",
           "encode", "encode_into", "encode_bound", "decode",
           "decode_reference", "info", "pack", "unpack",
           "verify", "numpy", "torch"]


def __getattr__(name):
    # df11.torch and df11.numpy load on first use, as attributes too.
    if name in ("torch", "numpy"):
        return importlib.import_module("." + name, __name__)
    raise AttributeError("module 'df11' has no attribute %r" % name)
