"""numpy reader, with the contract of safetensors.numpy."""

from ._core import _load_file


def load_file(filename, threads=None):
    """Every tensor of a .df11 container, .safetensors file or checkpoint
    folder as a dict of numpy arrays (BF16 as ml_dtypes.bfloat16)."""
    return _load_file(filename, "np", threads=threads)
