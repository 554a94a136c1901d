"""df11.encode / df11.decode against the reference decoder and the input
bits, on the edge cases of the C codec tests."""
import ctypes
import threading
import time

import ml_dtypes
import numpy as np
import pytest
import torch

import df11
from df11 import _lib

from conftest import same_bits


def bf16_words(x):
    return np.asarray(x, dtype=np.float32).astype(ml_dtypes.bfloat16) \
        .view(np.uint16)


def roundtrip(words, threads=None):
    enc = df11.encode(words, threads=threads)
    assert isinstance(enc, bytes)
    got = df11.decode(enc, threads=threads)
    assert got.dtype == np.uint16 and got.ndim == 1
    flat = np.ascontiguousarray(words).reshape(-1)
    assert same_bits(got, flat)
    assert same_bits(df11.decode_reference(enc), flat)
    return enc


def gaussian(rng, n, std):
    return bf16_words(rng.standard_normal(n) * std)


def test_version():
    assert df11.__version__ == "%d.%d.%d" % (
        df11.version_number // 10000, df11.version_number // 100 % 100,
        df11.version_number % 100)


def test_empty_and_one_element():
    roundtrip(np.zeros(0, np.uint16))
    for w in (0x0000, 0x8000, 0x3f80, 0x7fc1, 0xffff):
        roundtrip(np.array([w], np.uint16))


def test_all_equal_and_zeros():
    roundtrip(np.zeros(10000, np.uint16))
    roundtrip(np.full(777, 0x8000, np.uint16))  # -0.0
    enc = roundtrip(np.full(4096, 0x3f80, np.uint16))
    assert df11.info(enc)["codec"] in (1, 2)


def test_all_bit_patterns(rng):
    v = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    roundtrip(v)
    roundtrip(rng.permutation(np.tile(v, 3)))


def test_random_bits_stored_raw(rng):
    v = rng.integers(0, 65536, 100000, dtype=np.uint16)
    enc = roundtrip(v)
    assert df11.info(enc)["codec"] == 0


@pytest.mark.parametrize("std", [1e-30, 1e-3, 0.02, 1.0, 1e20])
def test_gaussian_scales(rng, std):
    enc = roundtrip(gaussian(rng, 50000, std))
    assert len(enc) < 50000 * 2


def test_heavy_tails_and_specials(rng):
    v = gaussian(rng, 70001, 0.02)
    v[::997] = bf16_words(rng.standard_cauchy(v[::997].size) * 100)
    v[5], v[6], v[7], v[8] = 0x7f80, 0xff80, 0x7fc0, 0x8000  # inf, -inf, nan, -0
    v[9] = 0x0001  # subnormal
    roundtrip(v)


@pytest.mark.parametrize("shape", [(1,), (3, 5), (7, 11, 13), (2, 1, 2, 1, 3),
                                   (4097,), (1000, 3)])
def test_shapes_and_odd_lengths(rng, shape):
    n = int(np.prod(shape))
    roundtrip(gaussian(rng, n, 0.05).reshape(shape))


def test_long_codes(rng):
    n, parts, i = 1 << 18, [], 0
    e = 0
    while i < n:
        run = (n >> (e + 1)) or (n - i)
        run = min(run, n - i)
        parts.append(((100 + e) << 7) | (rng.integers(0, 1 << 16, run)
                                         & 0x807f))
        i += run
        e += 1
    v = rng.permutation(np.concatenate(parts).astype(np.uint16))
    enc = roundtrip(v)
    assert df11.info(enc)["max_code_len"] == 15


def test_threads_give_identical_bytes(rng):
    v = gaussian(rng, 3 << 20, 0.02)
    a, b, c = (df11.encode(v, threads=t) for t in (1, 2, 5))
    assert a == b == c
    assert same_bits(df11.decode(a, threads=3), v)


def test_numpy_bfloat16_torch_agree(rng):
    v = gaussian(rng, 12345, 0.1).reshape(15, 823)
    e1 = df11.encode(v)
    e2 = df11.encode(v.view(ml_dtypes.bfloat16))
    e3 = df11.encode(torch.from_numpy(v.view(np.int16)).view(torch.bfloat16))
    assert e1 == e2 == e3


def test_non_contiguous_inputs(rng):
    v = gaussian(rng, 60 * 70, 0.1).reshape(60, 70)
    assert df11.encode(v.T) == df11.encode(np.ascontiguousarray(v.T))
    assert df11.encode(v[:, ::3]) == df11.encode(v[:, ::3].copy())
    t = torch.from_numpy(v.view(np.int16)).view(torch.bfloat16)
    assert df11.encode(t.t()) == df11.encode(t.t().contiguous())


def test_decode_inputs_and_out(rng):
    v = gaussian(rng, 5000, 0.3)
    enc = df11.encode(v)
    for data in (enc, bytearray(enc), memoryview(enc),
                 np.frombuffer(enc, np.uint8),
                 torch.frombuffer(bytearray(enc), dtype=torch.uint8)):
        assert same_bits(df11.decode(data), v)
    out = np.empty(5000, ml_dtypes.bfloat16)
    assert df11.decode(enc, out=out) is out
    assert same_bits(out.view(np.uint16), v)
    tout = torch.empty(5000, dtype=torch.bfloat16)
    df11.decode(enc, out=tout)
    assert same_bits(tout.view(torch.int16).numpy().view(np.uint16), v)
    with pytest.raises(ValueError):
        df11.decode(enc, out=np.empty(4999, np.uint16))
    with pytest.raises(ValueError):
        df11.decode(enc, out=np.empty(10000, np.uint16)[::2])


def test_zero_copy_input(rng):
    """A contiguous tensor is encoded from its own memory: the pointer C
    sees is the array's."""
    from df11._core import _bf16_words
    v = gaussian(rng, 1000, 0.1)
    assert _bf16_words(v)[0] == v.ctypes.data
    t = torch.zeros(1000, dtype=torch.bfloat16)
    assert _bf16_words(t)[0] == t.data_ptr()


def test_wrong_dtypes():
    for bad in (np.zeros(10, np.float32), np.zeros(10, np.int16),
                np.zeros(10, np.float16), torch.zeros(10),
                torch.zeros(10, dtype=torch.float16), [1, 2, 3], b"ab"):
        with pytest.raises(TypeError):
            df11.encode(bad)
    with pytest.raises(TypeError):
        df11.decode(12345)
    with pytest.raises(ValueError):
        df11.encode(np.zeros(10, np.uint16), threads=0)


def test_bad_data_raises_with_message(rng):
    v = gaussian(rng, 20000, 0.02)
    enc = df11.encode(v)
    for cut in (0, 1, 8, 31, 32, 100, len(enc) // 2, len(enc) - 1):
        with pytest.raises(df11.Error) as e:
            df11.decode(enc[:cut])
        assert e.value.code == _lib.BAD_DATA
        assert "corrupt" in str(e.value) or "truncat" in str(e.value)
    with pytest.raises(df11.Error):
        df11.decode(enc + b"\0")
    bad = bytearray(enc)
    bad[0] ^= 0xff  # magic / header
    with pytest.raises(df11.Error):
        df11.decode(bytes(bad))


def test_flipped_bits_never_crash(rng):
    """Every single-bit flip of a small tensor either fails with df11.Error
    or decodes to something (the container's checksums catch the rest);
    the reference and fast decoders never crash."""
    v = gaussian(rng, 3000, 0.02)
    enc = bytearray(df11.encode(v))
    for bit in range(0, len(enc) * 8, 7):
        b = bytearray(enc)
        b[bit // 8] ^= 1 << (bit % 8)
        for fn in (df11.decode, df11.decode_reference):
            try:
                out = fn(bytes(b))
                assert out.size == 3000
            except df11.Error:
                pass


def test_concurrent_decodes_in_threads(rng):
    tensors = [gaussian(rng, 200000 + 1000 * i, 0.01 * (i + 1))
               for i in range(6)]
    encs = [df11.encode(t) for t in tensors]
    errors = []

    def work(k):
        try:
            for _ in range(5):
                for i in range(k, k + 6):
                    j = i % 6
                    if not same_bits(df11.decode(encs[j], threads=2),
                                     tensors[j]):
                        errors.append("tensor %d differs" % j)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_gil_is_released_during_decode(rng):
    """ctypes.CDLL calls drop the GIL: the main thread keeps running
    Python code while another thread is inside df11_decode."""
    assert not (lib_flags() & ctypes._FUNCFLAG_PYTHONAPI)
    v = gaussian(rng, 48 << 20, 0.02)
    enc = df11.encode(v, threads=2)
    out = np.empty(v.size, np.uint16)
    t0 = time.perf_counter()
    df11.decode(enc, threads=1, out=out)
    one = time.perf_counter() - t0
    done = threading.Event()
    stamps = []

    def work():
        for _ in range(3):
            df11.decode(enc, threads=1, out=out)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    while not done.is_set():
        stamps.append(time.perf_counter())
    th.join()
    gaps = np.diff(stamps) if len(stamps) > 1 else np.array([3 * one])
    # With the GIL held, the loop would stall for a whole decode each time.
    assert len(stamps) > 100
    assert gaps.max() < 0.9 * one


def lib_flags():
    return _lib.lib.df11_decode._flags_


def test_encode_into(rng):
    v = gaussian(rng, 10000, 0.02)
    want = df11.encode(v)
    for out in (np.empty(df11.encode_bound(v.size), np.uint8),
                bytearray(df11.encode_bound(v.size)),
                torch.empty(df11.encode_bound(v.size), dtype=torch.uint8)):
        size = df11.encode_into(v, out)
        assert bytes(memoryview(out.numpy() if isinstance(out, torch.Tensor)
                                else out)[:size]) == want
    with pytest.raises(df11.Error) as e:
        df11.encode_into(v, np.empty(100, np.uint8))
    assert e.value.code == _lib.BUFFER_TOO_SMALL
