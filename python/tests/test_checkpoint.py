"""df11.safe_open / load_file / pack / unpack / verify against the
safetensors package on every dtype, sharded folders and bad input."""
import json
import os
import shutil
import threading

import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch

import df11
import df11.numpy
import df11.torch
from df11 import _lib

from conftest import MODELS, same_bits

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.uint16, torch.int16,
          torch.float16, torch.bfloat16, torch.uint32, torch.int32,
          torch.float32, torch.uint64, torch.int64, torch.float64,
          torch.float8_e4m3fn, torch.float8_e5m2]


def random_tensor(g, dtype, shape):
    n = int(np.prod(shape)) if shape else 1
    raw = torch.randint(0, 256, (n * torch.empty(0, dtype=dtype)
                                 .element_size(),), dtype=torch.uint8,
                        generator=g)
    if dtype == torch.bool:
        raw = raw & 1
    return raw.view(dtype).reshape(shape)


def mixed_tensors(seed=0):
    g = torch.Generator().manual_seed(seed)
    t = {}
    for i, dt in enumerate(DTYPES):
        t["raw.%s" % str(dt).split(".")[1]] = random_tensor(g, dt, (3, 5 + i))
    # BF16 weights as a checkpoint has them, with specials.
    w = (torch.randn(64, 96, generator=g) * 0.02).to(torch.bfloat16)
    w.view(-1)[:4] = torch.tensor([-0x8000, 0x7fc1, 0x7f80, 0x0001],
                                  dtype=torch.int16).view(torch.bfloat16)
    t["layer.weight"] = w
    t["layer.bits"] = torch.randint(-32768, 32767, (1000,), dtype=torch.int16,
                                    generator=g).view(torch.bfloat16)
    t["scalar"] = torch.tensor(3.5, dtype=torch.float32)
    t["scalar_bf16"] = torch.tensor(-0.0, dtype=torch.bfloat16)
    t["empty"] = torch.zeros(0, dtype=torch.float32)
    t["empty_bf16"] = torch.zeros(2, 0, 3, dtype=torch.bfloat16)
    t["one"] = torch.tensor([1.0], dtype=torch.bfloat16)
    return t


@pytest.fixture
def st_file(tmp_path):
    p = tmp_path / "model.safetensors"
    safetensors.torch.save_file(mixed_tensors(), str(p),
                                metadata={"format": "pt", "note": "x"})
    return p


@pytest.fixture
def sharded(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    t = mixed_tensors(1)
    names = sorted(t)
    half = len(names) // 2
    wm = {}
    for k, part in enumerate((names[:half], names[half:])):
        fn = "model-%05d-of-00002.safetensors" % (k + 1)
        safetensors.torch.save_file({n: t[n] for n in part}, str(d / fn),
                                    metadata={"format": "pt"})
        wm.update({n: fn for n in part})
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 1}, "weight_map": wm}))
    (d / "config.json").write_text('{"model_type": "none"}')
    return d


def reference(path):
    """name -> tensor through the safetensors package itself."""
    files = ([str(path)] if os.path.isfile(path) else
             [os.path.join(path, f) for f in sorted(os.listdir(path))
              if f.endswith(".safetensors")])
    out, meta = {}, None
    for f in files:
        with safetensors.safe_open(f, framework="pt") as h:
            meta = meta or h.metadata()
            for k in h.keys():
                out[k] = h.get_tensor(k)
    return out, meta


def check_same_as_safetensors(path, original):
    ref, meta = reference(original)
    with df11.safe_open(path, framework="pt") as f:
        assert sorted(f.keys()) == sorted(ref)
        assert f.metadata() == meta
        for k, v in ref.items():
            got = f.get_tensor(k)
            assert got.dtype == v.dtype and got.shape == v.shape, k
            assert same_bits(got, v), k
    with df11.safe_open(path, framework="np") as f:
        for k, v in ref.items():
            got = f.get_tensor(k)
            assert got.shape == tuple(v.shape), k
            if v.dtype == torch.bfloat16:
                assert got.dtype == ml_dtypes.bfloat16
            assert got.tobytes() == v.contiguous().reshape(-1).view(
                torch.uint8).numpy().tobytes(), k


def test_safetensors_file_and_container(st_file, tmp_path):
    check_same_as_safetensors(st_file, st_file)
    out = tmp_path / "model.df11"
    st = df11.pack(st_file, out, threads=2)
    assert st["n_tensors"] == len(mixed_tensors())
    assert st["n_compressed"] >= 1
    check_same_as_safetensors(out, st_file)
    with df11.safe_open(out) as f:
        assert f.describe("layer.weight").compressed
        assert f.describe("layer.weight").dtype == "BF16"
    assert df11.verify(out) is True
    assert df11.verify(out, against=st_file) is True
    back = tmp_path / "back.safetensors"
    df11.unpack(out, back)
    assert back.read_bytes() == st_file.read_bytes()


def test_sharded_folder(sharded, tmp_path):
    check_same_as_safetensors(sharded, sharded)
    out = tmp_path / "ckpt.df11"
    df11.pack(sharded, out)
    check_same_as_safetensors(out, sharded)
    with df11.safe_open(out) as f:
        assert f._ck.file("config.json") == b'{"model_type": "none"}'
    back = tmp_path / "back"
    df11.unpack(out, back)
    for name in os.listdir(sharded):
        assert (back / name).read_bytes() == (sharded / name).read_bytes()


def test_load_file_contracts(st_file, tmp_path):
    out = tmp_path / "m.df11"
    df11.pack(st_file, out)
    ref = safetensors.torch.load_file(str(st_file))
    for path in (st_file, out):
        got = df11.torch.load_file(path)
        assert sorted(got) == sorted(ref)
        for k in ref:
            assert same_bits(got[k], ref[k]), k
        # numpy: safetensors.numpy reads the dtypes numpy has.
        arrays = df11.numpy.load_file(path)
        for k, v in arrays.items():
            assert isinstance(v, np.ndarray)
    plain = {"a": np.arange(12, dtype=np.float32).reshape(3, 4),
             "b": np.array([1, -2], np.int64)}
    p = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file(plain, str(p))
    got = df11.numpy.load_file(p)
    ref_np = safetensors.numpy.load_file(str(p))
    assert sorted(got) == sorted(ref_np)
    for k in ref_np:
        assert same_bits(got[k], ref_np[k])


def test_fixture_models_roundtrip(tmp_path):
    for d in MODELS:
        out = tmp_path / (os.path.basename(d) + ".df11")
        df11.pack(d, out)
        check_same_as_safetensors(out, os.path.join(d, "model.safetensors"))
        assert df11.verify(out, against=d)


def test_pack_exists_force_and_cancel(st_file, tmp_path):
    out = tmp_path / "m.df11"
    df11.pack(st_file, out)
    with pytest.raises(df11.Error) as e:
        df11.pack(st_file, out)
    assert e.value.code == _lib.EXISTS
    calls = []
    df11.pack(st_file, out, force=True,
              callback=lambda d, t: calls.append((d, t)) and False)
    assert calls and calls[-1][0] == calls[-1][1]
    out2 = tmp_path / "cancelled.df11"
    with pytest.raises(df11.Error) as e:
        df11.pack(st_file, out2, callback=lambda d, t: True)
    assert e.value.code == _lib.CANCELLED
    assert not out2.exists()
    assert not [f for f in os.listdir(tmp_path) if "cancelled" in f]

    def boom(d, t):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        df11.pack(st_file, out2, callback=boom)
    assert not out2.exists()


def test_progress_bar_renders(st_file, tmp_path, capsys):
    df11.pack(st_file, tmp_path / "p.df11", progress=True)
    err = capsys.readouterr().err
    assert "df11 pack" in err and "100%" in err
    df11.pack(st_file, tmp_path / "q.df11", progress=False)
    assert capsys.readouterr().err == ""


def corrupt(path, offset, xor=0x01):
    b = bytearray(path.read_bytes())
    b[offset] ^= xor
    path.write_bytes(bytes(b))


def test_corrupt_container(st_file, tmp_path):
    out = tmp_path / "m.df11"
    df11.pack(st_file, out)
    with df11.safe_open(out) as f:
        enc = f._ck.encoded("layer.weight")
    # Find the payload in the file and flip one byte of its stream.
    raw = out.read_bytes()
    off = raw.find(enc.tobytes())
    assert off > 0
    bad = tmp_path / "bad.df11"
    shutil.copy(out, bad)
    corrupt(bad, off + len(enc) - 3)
    with df11.safe_open(bad) as f:
        with pytest.raises(df11.Error) as e:
            f.get_tensor("layer.weight")
        assert e.value.code in (_lib.CHECKSUM, _lib.BAD_DATA)
        assert str(e.value)
        # Other tensors still read.
        f.get_tensor("scalar")
    reports = []
    assert df11.verify(bad, report=lambda w, m: reports.append(w)) is False
    assert reports
    with pytest.raises(df11.Error):
        df11.unpack(bad, tmp_path / "never.safetensors")
    assert not (tmp_path / "never.safetensors").exists()


@pytest.mark.parametrize("cut", [0, 10, 64, 300, -64, -1])
def test_truncated_files(st_file, tmp_path, cut):
    out = tmp_path / "m.df11"
    df11.pack(st_file, out)
    for src in (out, st_file):
        raw = src.read_bytes()
        t = tmp_path / ("t" + src.suffix)
        t.write_bytes(raw[:cut] if cut >= 0 else raw[:len(raw) + cut])
        with pytest.raises(df11.Error) as e:
            df11.safe_open(t)
        assert e.value.code in (_lib.BAD_DATA, _lib.IO, _lib.UNSUPPORTED)
        assert str(e.value)
    with pytest.raises(df11.Error):
        df11.verify(tmp_path / "t.df11")


def test_missing_and_closed(st_file, tmp_path):
    with pytest.raises(df11.Error) as e:
        df11.safe_open(tmp_path / "nope.df11")
    assert "nope.df11" in str(e.value)
    f = df11.safe_open(st_file)
    with pytest.raises(KeyError):
        f.get_tensor("no.such.tensor")
    with f:
        pass
    for call in (f.keys, f.metadata, lambda: f.get_tensor("scalar")):
        with pytest.raises(ValueError, match="closed"):
            call()
    f.close()  # twice is fine
    with pytest.raises(ValueError):
        df11.safe_open(st_file, framework="tf")


def test_threads_reading_tensors(st_file, tmp_path):
    out = tmp_path / "m.df11"
    df11.pack(st_file, out)
    ref = safetensors.torch.load_file(str(st_file))
    errors = []
    shared = df11.safe_open(out)

    def work(k):
        try:
            own = df11.safe_open(out)
            for _ in range(20):
                for name in sorted(ref)[k::2] + ["layer.weight"]:
                    for h in (own, shared):
                        if not same_bits(h.get_tensor(name), ref[name]):
                            errors.append(name)
            own.close()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=work, args=(k % 2,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    shared.close()
    assert not errors
