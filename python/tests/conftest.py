import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def stories260k():
    return os.path.join(FIXTURES, "stories260K")


MODELS = [os.path.join(FIXTURES, "tiny-mistral"),
          os.path.join(FIXTURES, "tiny-mistral-sw"),
          stories260k()]


def same_bits(a, b):
    """Bit-for-bit equality of two tensors or arrays (dtype, shape, bytes):
    -0.0 and NaN payloads count."""
    import numpy as np
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and isinstance(a, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        a = a.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        b = b.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        return a.tobytes() == b.tobytes()
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.ascontiguousarray(a).tobytes()
            == np.ascontiguousarray(b).tobytes())


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(1234)
