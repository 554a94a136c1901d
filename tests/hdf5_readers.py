#!/usr/bin/env python3
"""The df11 HDF5 filter as its users meet it: h5py (PyPI wheel, with its own
bundled libhdf5) and h5dump (Debian's hdf5-tools, the system libhdf5), each
finding libdf11_h5filter.so through HDF5_PLUGIN_PATH.

Usage: hdf5_readers.py --plugin-dir DIR [--h5dump PATH] [--export PATH]

What each test would catch:
  h5py_roundtrip       h5py writing/reading through the plugin not bit-exact
                       (NaN payloads, subnormals, -0, edge chunks)
  h5dump_reads_h5py    a file written by HDF5 2.0 (h5py) not read back by
                       HDF5 1.10 (h5dump) byte for byte
  without_plugin_*     a reader without the plugin getting data (zeros,
                       garbage) instead of HDF5's "filter not available"
  corrupt_chunk_h5py   a damaged chunk read as data in h5py
  large_h5py           a 32 MiB dataset in 2 MiB chunks not round-tripping
  export_*             df11-export --hdf5 output (see docs/HDF5.md); an
                       interrupted export leaving a file behind
"""
import argparse
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import h5py
import numpy as np

FILTER_ID = 479
ARGS = None


def bf16(rng, shape, std=0.02):
    """Random BF16 words (RNE from float32) with special values mixed in."""
    f = (rng.standard_normal(shape).astype(np.float32) * np.float32(std))
    u = f.view(np.uint32).astype(np.uint64)
    w = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    flat = w.reshape(-1)
    special = np.array([0x7F81, 0xFFFF, 0x7F80, 0xFF80, 0x0001, 0x8000,
                        0x0000, 0x7FC1, 0x8001], dtype=np.uint16)
    k = min(flat.size, special.size)
    flat[:k] = special[:k]
    return w


def write_safetensors(path, tensors):
    """tensors: {name: (dtype, array)}; returns {name: original bytes}."""
    header, blobs, off = {}, [], 0
    for name, (dtype, a) in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return {name: blob for name, blob in zip(tensors, blobs)}


def checkpoint_tensors(rng):
    """Every dtype, scalar, empty and grouped names, edge chunks."""
    return {
        "model.embed_tokens.weight": ("BF16", bf16(rng, (1000, 256))),
        "model.layers.0.self_attn.q_proj.weight": ("BF16", bf16(rng, (256, 256))),
        "model.layers.0.mlp.gate_proj.weight": ("BF16", bf16(rng, (3, 5, 7000))),
        "model.layers.0.mlp.up_proj.weight": ("BF16", bf16(rng, (3, 10, 1000))),
        "model.norm.weight": ("BF16", bf16(rng, (256,), 0.1)),
        "lm_head/bias": ("BF16", bf16(rng, (7, 9))),
        "bf16_scalar": ("BF16", bf16(rng, ())),
        "bf16_empty": ("BF16", np.zeros((0, 3), np.uint16)),
        "f32": ("F32", rng.standard_normal((3, 5)).astype(np.float32)),
        "f64": ("F64", rng.standard_normal(4)),
        "f16_all_patterns": ("F16", np.arange(65536, dtype=np.uint16)),
        "i64": ("I64", np.arange(-5, 5, dtype=np.int64)),
        "i32": ("I32", np.arange(-5, 5, dtype=np.int32)),
        "u32": ("U32", np.arange(10, dtype=np.uint32) * 400000000),
        "i16": ("I16", np.arange(-3, 3, dtype=np.int16)),
        "u16": ("U16", np.arange(6, dtype=np.uint16) * 9000),
        "i8": ("I8", np.arange(-128, 128, dtype=np.int8)),
        "u8": ("U8", np.arange(256, dtype=np.uint8)),
        "u64": ("U64", np.array([0, 2**64 - 1], dtype=np.uint64)),
        "mask": ("BOOL", np.array([0, 1, 1, 0, 1], dtype=np.uint8)),
        "f8": ("F8_E4M3", np.arange(256, dtype=np.uint8)),
        "f8b": ("F8_E5M2", np.arange(256, dtype=np.uint8)[::-1].copy()),
    }


def env_with(plugin_dir):
    env = dict(os.environ)
    env["HDF5_PLUGIN_PATH"] = plugin_dir
    return env


def h5dump_binary(path, name, plugin_dir, out):
    """h5dump -b LE of one dataset: (exit status, stderr, bytes)."""
    if os.path.exists(out):
        os.remove(out)
    p = subprocess.run([ARGS.h5dump, "-d", name, "-b", "LE", "-o", out, path],
                       env=env_with(plugin_dir), capture_output=True,
                       text=True, timeout=120)
    data = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            data = f.read()
    return p.returncode, p.stdout + p.stderr, data


class Readers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="df11_h5_")
        self.dir = self.tmp.name
        self.empty = os.path.join(self.dir, "no_plugins")
        os.mkdir(self.empty)
        self.rng = np.random.default_rng(7)

    def tearDown(self):
        self.tmp.cleanup()

    def make_file(self):
        """Datasets written by h5py through the plugin; returns
        (path, {name: words})."""
        path = os.path.join(self.dir, "h5py.h5")
        data = {
            "model.embed_tokens.weight": (bf16(self.rng, (1000, 300)), (256, 128)),
            "norm": (bf16(self.rng, (777,), 0.1), (256,)),
            "block/conv": (bf16(self.rng, (3, 40, 50)), (1, 40, 50)),
            "one": (bf16(self.rng, (1,)), (1,)),
        }
        with h5py.File(path, "w") as f:
            for name, (w, chunks) in data.items():
                d = f.create_dataset(name, data=w, chunks=chunks,
                                     compression=FILTER_ID)
                d.attrs["dtype"] = "BF16"
                filt = d.id.get_create_plist().get_filter(0)
                self.assertEqual(filt[0], FILTER_ID)
                # set_local ran inside h5py's own libhdf5 (run-time
                # lookup): element size, chunk bytes.
                self.assertEqual(filt[2], (2, int(np.prod(chunks)) * 2))
        return path, {k: v[0] for k, v in data.items()}

    def test_h5py_roundtrip(self):
        path, data = self.make_file()
        with h5py.File(path, "r") as f:
            for name, w in data.items():
                d = f[name]
                self.assertEqual(d.dtype, np.dtype("<u2"))
                back = d[()]
                self.assertEqual(back.tobytes(), w.tobytes(), name)
                # A slice decodes only the chunks it touches.
                if w.ndim == 2:
                    self.assertEqual(d[300:301, 5:200].tobytes(),
                                     w[300:301, 5:200].tobytes())
            # HDF5 stores edge chunks whole: compare with the chunks.
            big = f["model.embed_tokens.weight"]
            chunk_bytes = big.id.get_num_chunks() * np.prod(big.chunks) * 2
            self.assertLess(big.id.get_storage_size(), 0.72 * chunk_bytes)

    def test_h5dump_reads_h5py(self):
        if not ARGS.h5dump:
            self.skipTest("h5dump not found")
        path, data = self.make_file()
        out = os.path.join(self.dir, "out.bin")
        for name, w in data.items():
            rc, msg, got = h5dump_binary(path, name, ARGS.plugin_dir, out)
            self.assertEqual(rc, 0, msg)
            self.assertEqual(got, w.astype("<u2").tobytes(), name)

    def test_without_plugin_h5dump(self):
        if not ARGS.h5dump:
            self.skipTest("h5dump not found")
        path, data = self.make_file()
        out = os.path.join(self.dir, "out.bin")
        rc, msg, got = h5dump_binary(path, "norm", self.empty, out)
        self.assertNotEqual(rc, 0)
        self.assertIn("unable to print data", msg)
        self.assertNotEqual(got, data["norm"].tobytes())
        # With the error stack shown, HDF5 names the missing filter.
        p = subprocess.run([ARGS.h5dump, "--enable-error-stack", "-d", "norm",
                            path], env=env_with(self.empty),
                           capture_output=True, text=True, timeout=60)
        self.assertIn("required filter 'df11: lossless BF16 (Huffman-coded "
                      "exponents)' is not registered", p.stdout + p.stderr)

    def test_without_plugin_h5py(self):
        path, _ = self.make_file()
        code = (
            "import h5py, sys\n"
            "f = h5py.File(sys.argv[1], 'r')\n"
            "d = f['norm']\n"
            "print('meta', d.shape, d.dtype, d.attrs['dtype'])\n"
            "try:\n"
            "    d[()]\n"
            "    print('READ DATA WITHOUT PLUGIN')\n"
            "except OSError as e:\n"
            "    print('error:', e)\n")
        p = subprocess.run([sys.executable, "-c", code, path],
                           env=env_with(self.empty), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # Metadata stays readable; the data gives HDF5's plugin error
        # (HDF5 2.0 in h5py wheels: "can't find plugin", 1.10: "required
        # filter ... is not registered").
        self.assertIn("meta (777,) uint16 BF16", p.stdout)
        self.assertNotIn("READ DATA", p.stdout)
        self.assertRegex(p.stdout, r"error: .*(can't find plugin|"
                                   r"is not registered)")

    def test_corrupt_chunk_h5py(self):
        path, data = self.make_file()
        with h5py.File(path, "r+") as f:
            d = f["model.embed_tokens.weight"]
            mask, chunk = d.id.read_direct_chunk((256, 128))
            self.assertEqual(mask, 0)
            self.assertEqual(chunk[:4], b"DF1H")
            bad = bytearray(chunk)
            bad[len(bad) // 2] ^= 0x04
            d.id.write_direct_chunk((256, 128), bytes(bad))
        with h5py.File(path, "r") as f:
            d = f["model.embed_tokens.weight"]
            with self.assertRaises(OSError) as cm:
                d[()]
            print("corrupt chunk in h5py:", cm.exception, file=sys.stderr)
            # Chunks not touched still read.
            self.assertEqual(d[0:256, 0:128].tobytes(),
                             data["model.embed_tokens.weight"][0:256, 0:128].tobytes())

    def test_large_h5py(self):
        path = os.path.join(self.dir, "large.h5")
        w = bf16(self.rng, (4096, 4096))  # 32 MiB
        with h5py.File(path, "w") as f:
            f.create_dataset("w", data=w, chunks=(256, 4096),
                             compression=FILTER_ID)
        with h5py.File(path, "r") as f:
            d = f["w"]
            self.assertEqual(d[()].tobytes(), w.tobytes())
            ratio = d.id.get_storage_size() / w.nbytes
        self.assertLess(ratio, 0.72)


class Export(unittest.TestCase):
    """df11-export --hdf5, read by h5py and h5dump."""

    def setUp(self):
        if not ARGS.export:
            self.skipTest("df11-export not built")
        self.tmp = tempfile.TemporaryDirectory(prefix="df11_export_")
        self.dir = self.tmp.name
        self.rng = np.random.default_rng(11)

    def tearDown(self):
        self.tmp.cleanup()

    def export(self, src, out, *extra):
        return subprocess.run([ARGS.export, src, "--hdf5", "-o", out,
                               "--threads", "2", *extra],
                              capture_output=True, text=True, timeout=300)

    def checkpoint(self):
        """A folder with model.safetensors and config.json."""
        ck = os.path.join(self.dir, "ck")
        os.mkdir(ck)
        tensors = checkpoint_tensors(self.rng)
        want = write_safetensors(os.path.join(ck, "model.safetensors"),
                                 tensors)
        config = '{"architectures": ["LlamaForCausalLM"], "note": "caf\u00e9"}\n'
        with open(os.path.join(ck, "config.json"), "w", encoding="utf-8") as f:
            f.write(config)
        return ck, tensors, want, config

    def check_h5py(self, path, tensors, want):
        with h5py.File(path, "r") as f:
            names = []
            f.visititems(lambda k, o: names.append(k)
                         if isinstance(o, h5py.Dataset) else None)
            self.assertEqual(sorted(names), sorted(tensors))
            for name, (dtype, a) in tensors.items():
                d = f[name]
                self.assertEqual(d.attrs["dtype"], dtype, name)
                self.assertEqual([int(x) for x in d.attrs["shape"]],
                                 list(a.shape), name)
                self.assertEqual(d.shape, a.shape, name)
                got = np.asarray(d[()]).tobytes()
                self.assertEqual(got, want[name], name)
                if dtype == "BF16" and a.size:
                    self.assertEqual(d.dtype, np.dtype("<u2"))
                    if a.ndim:
                        filt = d.id.get_create_plist().get_filter(0)
                        self.assertEqual(filt[0], FILTER_ID, name)
                        self.assertEqual(filt[1] & 1, 0, "mandatory")
                        # set_local ran: element size, chunk bytes.
                        self.assertEqual(filt[2],
                                         (2, int(np.prod(d.chunks)) * 2))
            self.assertEqual(f["f16_all_patterns"].dtype, np.float16)
            self.assertEqual(f["mask"].dtype, np.bool_)
            self.assertEqual(f["f32"].dtype, np.float32)
            self.assertEqual(int(f.attrs["df11_filter_id"][0]), FILTER_ID)

    def test_export_safetensors_h5py(self):
        ck, tensors, want, _ = self.checkpoint()
        out = os.path.join(self.dir, "m.h5")
        p = self.export(os.path.join(ck, "model.safetensors"), out, "--verify")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("verified", p.stdout)
        self.assertEqual(sorted(os.listdir(self.dir)), ["ck", "m.h5"])
        self.check_h5py(out, tensors, want)
        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["source"], "model.safetensors")
            big = f["model.embed_tokens.weight"]
            chunk_bytes = big.id.get_num_chunks() * np.prod(big.chunks) * 2
            self.assertLess(big.id.get_storage_size(), 0.72 * chunk_bytes)

    def test_export_checkpoint_config(self):
        ck, tensors, want, config = self.checkpoint()
        out = os.path.join(self.dir, "ck.h5")
        p = self.export(ck, out, "--chunk-kib", "16")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_h5py(out, tensors, want)
        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["config.json"], config)
            self.assertEqual(json.loads(f.attrs["config.json"])["note"],
                             "caf\u00e9")
            # 16 KiB chunks: (1000, 256) -> 32 rows per chunk.
            self.assertEqual(f["model.embed_tokens.weight"].chunks, (32, 256))
            self.assertEqual(f["model.layers.0.mlp.gate_proj.weight"].chunks,
                             (1, 1, 7000))
            # Split in the middle dim, edge chunks in it, dim 0 walked.
            up = f["model.layers.0.mlp.up_proj.weight"]
            self.assertEqual(up.chunks, (1, 8, 1000))
            self.assertEqual(up.id.get_num_chunks(), 6)

    def test_export_h5dump(self):
        if not ARGS.h5dump:
            self.skipTest("h5dump not found")
        ck, tensors, want, config = self.checkpoint()
        out = os.path.join(self.dir, "ck.h5")
        p = self.export(ck, out)
        self.assertEqual(p.returncode, 0, p.stderr)
        binf = os.path.join(self.dir, "out.bin")
        for name, (dtype, a) in tensors.items():
            if dtype in ("F16", "BOOL"):
                continue  # h5dump 1.10 -b writes nothing for these
            rc, msg, got = h5dump_binary(out, name, ARGS.plugin_dir, binf)
            self.assertEqual(rc, 0, msg)
            self.assertEqual(got, want[name], name)
        # F16 and BOOL as text: values, not bits (bits: h5py above).
        p = subprocess.run([ARGS.h5dump, "-d", "f16_all_patterns", "-m",
                            "%.17g", "-y", "-w", "0", out],
                           env=env_with(ARGS.plugin_dir), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        body = p.stdout.split("DATA {", 1)[1].split("}", 1)[0]
        vals = np.array([float(x) for x in body.replace("\n", " ").split(",")])
        f16 = tensors["f16_all_patterns"][1].view(np.float16).astype(np.float64)
        self.assertEqual(vals.shape, f16.shape)
        nan = np.isnan(f16)
        self.assertTrue(np.array_equal(np.isnan(vals), nan))
        self.assertTrue(np.array_equal(vals[~nan], f16[~nan]))
        p = subprocess.run([ARGS.h5dump, "-d", "mask", out],
                           env=env_with(ARGS.plugin_dir), capture_output=True,
                           text=True, timeout=60)
        self.assertIn("FALSE, TRUE, TRUE, FALSE, TRUE", p.stdout)
        p = subprocess.run([ARGS.h5dump, "-a", "/config.json", out],
                           env=env_with(ARGS.plugin_dir), capture_output=True,
                           text=True, timeout=60)
        self.assertIn("LlamaForCausalLM", p.stdout)
        # Without the plugin: the BF16 data fails, the rest still reads.
        empty = os.path.join(self.dir, "none")
        os.mkdir(empty)
        rc, msg, got = h5dump_binary(out, "model.norm.weight", empty, binf)
        self.assertNotEqual(rc, 0)
        self.assertNotEqual(got, want["model.norm.weight"])
        rc, msg, got = h5dump_binary(out, "f32", empty, binf)
        self.assertEqual((rc, got), (0, want["f32"]))

    def test_export_errors(self):
        ck, _, _, _ = self.checkpoint()
        src = os.path.join(ck, "model.safetensors")
        out = os.path.join(self.dir, "x.h5")
        with open(out, "w") as f:
            f.write("keep me")
        p = self.export(src, out)
        self.assertEqual(p.returncode, 1)
        self.assertIn("exists", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        with open(out) as f:
            self.assertEqual(f.read(), "keep me")
        p = self.export(src, out, "--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        # A truncated input: one line, no output, no temporary left.
        bad = os.path.join(self.dir, "bad.safetensors")
        with open(src, "rb") as f, open(bad, "wb") as g:
            g.write(f.read(3000))
        bad_out = os.path.join(self.dir, "bad.h5")
        p = self.export(bad, bad_out)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertFalse([n for n in os.listdir(self.dir) if "bad.h5" in n])
        p = subprocess.run([ARGS.export, src, "-o", out], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 2)  # --hdf5 missing: usage

    def test_export_interrupted(self):
        """SIGINT while the temporary file is being written: nothing is
        left, neither OUT.h5 nor the temporary."""
        src = os.path.join(self.dir, "big.safetensors")
        write_safetensors(src, {"w%d" % i: ("BF16", bf16(self.rng, (2048, 4096)))
                                for i in range(4)})  # 64 MiB
        out = os.path.join(self.dir, "big.h5")
        proc = subprocess.Popen([ARGS.export, src, "--hdf5", "-o", out,
                                 "--threads", "1"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(".tmp-" in n for n in os.listdir(self.dir)):
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.001)
        rc = proc.wait(timeout=60)
        left = sorted(n for n in os.listdir(self.dir) if n.startswith("big.h5"))
        if rc == 0:  # finished before the signal landed: complete output
            self.assertEqual(left, ["big.h5"])
        else:
            self.assertEqual(rc, -signal.SIGINT)
            self.assertEqual(left, [])

    def test_export_df11_container(self):
        enc = os.path.join(os.environ.get("DF11_BIN_DIR", ""), "df11-encode")
        if not os.access(enc, os.X_OK):
            self.skipTest("df11-encode not built")
        ck, tensors, want, config = self.checkpoint()
        packed = os.path.join(self.dir, "ck.df11")
        p = subprocess.run([enc, ck, "-o", packed], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = os.path.join(self.dir, "from_df11.h5")
        p = self.export(packed, out, "--verify")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_h5py(out, tensors, want)
        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["config.json"], config)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--h5dump")
    ap.add_argument("--export")
    ARGS, rest = ap.parse_known_args()
    os.environ["HDF5_PLUGIN_PATH"] = ARGS.plugin_dir
    # h5py reads HDF5_PLUGIN_PATH when its libhdf5 first loads a plugin;
    # set above, before any file is touched.
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
