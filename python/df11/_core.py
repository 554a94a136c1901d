"""Tensor codec, checkpoint reader and the pack / unpack / verify pipelines."""

import ctypes
import json
import os
import sys
import threading

import numpy as np

from . import _lib
from ._lib import lib


class Error(Exception):
    """A libdf11 call failed. ``code`` is the df11_result, ``message`` the
    text of df11_last_error() for the failing call."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _last_error(code):
    msg = lib.df11_last_error()
    msg = msg.decode("utf-8", "replace") if msg else ""
    if not msg:
        msg = lib.df11_strerror(code).decode("utf-8", "replace")
    return msg


def _check(code):
    if code != _lib.OK:
        raise Error(code, _last_error(code))


def default_threads():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _threads(threads):
    if threads is None:
        return default_threads()
    threads = int(threads)
    if threads < 1:
        raise ValueError("threads must be >= 1 (or None for all CPUs)")
    return threads


# ---------------------------------------------------------------- buffers

def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


def _bf16_words(array):
    """(pointer, n_elems, keepalive) of a BF16 tensor's words, without a
    copy when its memory is contiguous on the CPU."""
    if _is_torch(array):
        import torch
        if not isinstance(array, torch.Tensor):
            raise TypeError("expected a torch.Tensor, got %r" % type(array))
        if array.dtype != torch.bfloat16:
            raise TypeError("df11 encodes BF16 tensors, got a %s tensor"
                            % array.dtype)
        t = array.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if not t.is_contiguous():
            t = t.contiguous()
        return t.data_ptr(), t.numel(), t
    if isinstance(array, np.ndarray):
        if array.dtype != np.uint16 and array.dtype.name != "bfloat16":
            raise TypeError("df11 encodes BF16 tensors: expected a numpy "
                            "uint16 or ml_dtypes.bfloat16 array, got %s"
                            % array.dtype)
        a = array
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        return a.ctypes.data, a.size, a
    raise TypeError("expected a numpy array or a torch tensor, got %r"
                    % type(array).__name__)


def _readable(data):
    """(pointer, size, keepalive) of bytes-like or uint8 array/tensor data."""
    if _is_torch(data):
        t = data.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.contiguous()
        return t.data_ptr(), t.numel() * t.element_size(), t
    if isinstance(data, np.ndarray):
        a = np.ascontiguousarray(data)
        return a.ctypes.data, a.nbytes, a
    if isinstance(data, bytes):
        # A bytes object's buffer is read-only to Python; C only reads it.
        return (ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value,
                len(data), data)
    try:
        mv = memoryview(data)
    except TypeError:
        raise TypeError("expected bytes-like encoded data, got %r"
                        % type(data).__name__) from None
    a = np.frombuffer(mv.cast("B") if mv.ndim != 1 or mv.format != "B"
                      else mv, dtype=np.uint8)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a.ctypes.data, a.nbytes, (a, mv)


# The encoded tensor is written straight into a bytes object, which is then
# shrunk in place: no copy of the output.
try:
    _api = ctypes.pythonapi
    _bytes_new = _api.PyBytes_FromStringAndSize
    _bytes_new.restype = ctypes.py_object
    _bytes_new.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    _bytes_ptr = _api.PyBytes_AsString
    _bytes_ptr.restype = ctypes.c_void_p
    _bytes_ptr.argtypes = [ctypes.py_object]
    _bytes_resize = _api._PyBytes_Resize
    _bytes_resize.restype = ctypes.c_int
    _bytes_resize.argtypes = [ctypes.POINTER(ctypes.py_object),
                              ctypes.c_ssize_t]
except (AttributeError, ValueError):  # not CPython
    _bytes_new = None


# ------------------------------------------------------------------ codec

def encode(array, threads=None):
    """Encodes one BF16 tensor (numpy uint16 or ml_dtypes.bfloat16 array,
    or torch.bfloat16 tensor, any shape) into df11 bytes. The shape is not
    stored: decode() gives back the flat words."""
    ptr, n, keep = _bf16_words(array)
    opt = _lib.encode_options(threads=_threads(threads))
    cap = lib.df11_encode_bound(n)
    size = ctypes.c_size_t(0)
    if _bytes_new is not None:
        box = ctypes.py_object(_bytes_new(None, cap))
        dst = _bytes_ptr(box.value)
        r = lib.df11_encode(ptr, n, ctypes.byref(opt), dst, cap,
                            ctypes.byref(size))
        _check(r)
        if _bytes_resize(ctypes.byref(box), size.value) != 0:
            raise MemoryError("cannot shrink the encoded bytes")
        out = box.value
    else:
        buf = np.empty(cap, dtype=np.uint8)
        r = lib.df11_encode(ptr, n, ctypes.byref(opt), buf.ctypes.data, cap,
                            ctypes.byref(size))
        _check(r)
        out = buf[:size.value].tobytes()
    del keep
    return out


def encode_bound(n_elems):
    """Bytes that always suffice for the encoding of n_elems BF16 values."""
    return lib.df11_encode_bound(int(n_elems))


def encode_into(array, out, threads=None):
    """Encodes like encode(), into a caller's writeable buffer (a numpy
    uint8 array, bytearray or uint8 tensor of at least
    encode_bound(array.size) bytes; bytes past the result are scratch).
    Returns the encoded size: the encoding is out[:size]."""
    ptr, n, keep = _bf16_words(array)
    if _is_torch(out):
        if out.device.type != "cpu" or not out.is_contiguous():
            raise ValueError("out must be a contiguous CPU tensor")
        dst, cap = out.data_ptr(), out.numel() * out.element_size()
    else:
        a = np.frombuffer(out, dtype=np.uint8) if not isinstance(
            out, np.ndarray) else out
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError("out must be a writeable contiguous buffer")
        dst, cap = a.ctypes.data, a.nbytes
    opt = _lib.encode_options(threads=_threads(threads))
    size = ctypes.c_size_t(0)
    _check(lib.df11_encode(ptr, n, ctypes.byref(opt), dst, cap,
                           ctypes.byref(size)))
    del keep
    return size.value


class _Decoder:
    __slots__ = ("handle", "threads")

    def __init__(self, threads):
        self.threads = threads
        self.handle = lib.df11_decoder_new(threads)
        if not self.handle:
            raise MemoryError("df11_decoder_new(%d) failed" % threads)

    def __del__(self):
        h, self.handle = getattr(self, "handle", None), None
        if h and lib is not None:
            lib.df11_decoder_free(h)


_tls = threading.local()


def decoder(threads):
    """This thread's decoder for that many threads (decoders hold tables
    and scratch; one per calling thread, as the C API requires)."""
    cache = getattr(_tls, "decoders", None)
    if cache is None:
        cache = _tls.decoders = {}
    d = cache.get(threads)
    if d is None:
        d = cache[threads] = _Decoder(threads)
    return d


def info(data):
    """Describes an encoded tensor (df11_inspect): a dict of its fields."""
    ptr, size, keep = _readable(data)
    ti = _lib.tensor_info()
    _check(lib.df11_inspect(ptr, size, ctypes.byref(ti)))
    del keep
    return {f: (list(getattr(ti, f)) if f == "code_len" else getattr(ti, f))
            for f, _ in _lib.tensor_info._fields_}


def _n_elems(ptr, size):
    ti = _lib.tensor_info()
    _check(lib.df11_inspect(ptr, size, ctypes.byref(ti)))
    return ti.n_elems


def decode(data, threads=None, out=None):
    """Decodes df11 bytes (bytes, bytearray, memoryview, uint8 array or
    tensor) into a new 1-D numpy uint16 array of exactly the original bits.
    With ``out`` (a C-contiguous numpy uint16/bfloat16 array or torch
    bfloat16 tensor of the tensor's element count), decodes into it and
    returns it."""
    ptr, size, keep = _readable(data)
    n = _n_elems(ptr, size)
    if out is None:
        res = np.empty(n, dtype=np.uint16)
        dst, dst_n = res.ctypes.data, n
    else:
        res = out
        dst, dst_n, _ = _bf16_words(out)
        if _is_torch(out):
            if out.device.type != "cpu" or not out.is_contiguous():
                raise ValueError("out must be a contiguous CPU tensor")
        elif not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writeable C-contiguous array")
        if dst_n != n:
            raise ValueError("out holds %d elements, the tensor %d"
                             % (dst_n, n))
    d = decoder(_threads(threads))
    _check(lib.df11_decode(d.handle, ptr, size, dst, n))
    del keep
    return res


def decode_reference(data):
    """The bit-by-bit reference decoder (slow; for checking)."""
    ptr, size, keep = _readable(data)
    n = _n_elems(ptr, size)
    res = np.empty(n, dtype=np.uint16)
    _check(lib.df11_decode_reference(ptr, size, res.ctypes.data, n))
    del keep
    return res


# ------------------------------------------------------------ checkpoints

def _np_dtypes():
    import ml_dtypes
    return {
        "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8),
        "I8": np.dtype(np.int8), "U16": np.dtype(np.uint16),
        "I16": np.dtype(np.int16), "F16": np.dtype(np.float16),
        "BF16": np.dtype(ml_dtypes.bfloat16), "U32": np.dtype(np.uint32),
        "I32": np.dtype(np.int32), "F32": np.dtype(np.float32),
        "U64": np.dtype(np.uint64), "I64": np.dtype(np.int64),
        "F64": np.dtype(np.float64),
        "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
        "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    }


def _torch_dtypes():
    import torch
    return {
        "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8,
        "U16": torch.uint16, "I16": torch.int16, "F16": torch.float16,
        "BF16": torch.bfloat16, "U32": torch.uint32, "I32": torch.int32,
        "F32": torch.float32, "U64": torch.uint64, "I64": torch.int64,
        "F64": torch.float64, "F8_E4M3": torch.float8_e4m3fn,
        "F8_E5M2": torch.float8_e5m2,
    }


class TensorDesc:
    """One tensor of a checkpoint, as df11_model_tensor describes it."""
    __slots__ = ("index", "name", "dtype", "shape", "n_elems", "nbytes",
                 "compressed", "stored_bytes")

    def __init__(self, index, d):
        self.index = index
        self.name = d.name.decode("utf-8")
        self.dtype = _lib.DTYPE_NAMES[d.dtype]
        self.shape = tuple(int(d.shape[i]) for i in range(d.ndim))
        self.n_elems = int(d.n_elems)
        self.nbytes = int(d.nbytes)
        self.compressed = bool(d.compressed)
        self.stored_bytes = int(d.stored_bytes)

    def __repr__(self):
        return ("TensorDesc(%r, %s, %s%s)"
                % (self.name, self.dtype, list(self.shape),
                   ", compressed" if self.compressed else ""))


class Checkpoint:
    """An open checkpoint (df11_model): a .df11 container, a .safetensors
    file or a sharded checkpoint folder. Reads take a lock: the C model has
    one decoder, used by one thread at a time."""

    def __init__(self, path, threads=None):
        self.path = os.fspath(path)
        h = ctypes.c_void_p()
        _check(lib.df11_model_open(os.fsencode(self.path), ctypes.byref(h)))
        self._h = h
        self._lock = threading.Lock()
        try:
            _check(lib.df11_model_set_threads(h, _threads(threads)))
            n = lib.df11_model_num_tensors(h)
            self._desc = []
            d = _lib.tensor_desc()
            for i in range(n):
                _check(lib.df11_model_tensor(h, i, ctypes.byref(d)))
                self._desc.append(TensorDesc(i, d))
            self._by_name = {t.name: t for t in self._desc}
        except BaseException:
            self.close()
            raise

    # -- lifetime
    def close(self):
        with self._lock:
            h, self._h = getattr(self, "_h", None), None
            if h:
                lib.df11_model_close(h)

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h and lib is not None:
            lib.df11_model_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _handle(self):
        if not self._h:
            raise ValueError("%s: the checkpoint is closed" % self.path)
        return self._h

    # -- description
    def keys(self):
        self._handle()
        return [t.name for t in self._desc]

    def descs(self):
        self._handle()
        return list(self._desc)

    def desc(self, name):
        self._handle()
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError("%s: no tensor named %r" % (self.path, name)) \
                from None

    def metadata(self):
        """The safetensors "__metadata__" dict (None if absent). For a
        sharded folder: the union of its shards' metadata, first shard
        first."""
        self._handle()
        seen, merged, any_md = set(), {}, False
        for t in self._desc:
            ptr, size = ctypes.c_void_p(), ctypes.c_size_t()
            with self._lock:
                _check(lib.df11_model_tensor_header(
                    self._handle(), t.index, ctypes.byref(ptr),
                    ctypes.byref(size)))
                if ptr.value in seen:
                    continue
                seen.add(ptr.value)
                raw = ctypes.string_at(ptr.value, size.value)
            hdr = json.loads(raw[8:].decode("utf-8"))
            md = hdr.get("__metadata__")
            if md is not None:
                any_md = True
                for k, v in md.items():
                    merged.setdefault(k, v)
        return merged if any_md else None

    def file(self, name):
        """A carried non-weight file ("config.json", ...) as bytes."""
        ptr, size = ctypes.c_void_p(), ctypes.c_size_t()
        with self._lock:
            _check(lib.df11_model_file(self._handle(), name.encode("utf-8"),
                                       ctypes.byref(ptr), ctypes.byref(size)))
            return ctypes.string_at(ptr.value, size.value)

    def encoded(self, name):
        """The df11-encoded bytes of a compressed tensor, as stored (a new
        numpy uint8 array: it stays valid after close)."""
        t = self.desc(name)
        ptr, size = ctypes.c_void_p(), ctypes.c_size_t()
        with self._lock:
            _check(lib.df11_model_encoded(self._handle(), t.index,
                                          ctypes.byref(ptr),
                                          ctypes.byref(size)))
            a = np.empty(size.value, dtype=np.uint8)
            ctypes.memmove(a.ctypes.data, ptr.value, size.value)
        return a

    # -- reading
    def read_into(self, name, ptr, nbytes):
        """Reads a tensor's original bytes into memory at ptr (nbytes must
        equal the tensor's size), decoding and checking it."""
        t = self.desc(name)
        if nbytes != t.nbytes:
            raise ValueError("%s: %d bytes, buffer of %d" % (name, t.nbytes,
                                                             nbytes))
        with self._lock:
            _check(lib.df11_model_read(self._handle(), t.index, ptr, nbytes))

    def read_numpy(self, name):
        t = self.desc(name)
        dt = _np_dtypes()[t.dtype]
        a = np.empty(t.shape, dtype=dt)
        self.read_into(name, a.ctypes.data, a.nbytes)
        return a

    def read_torch(self, name, device="cpu"):
        import torch
        t = self.desc(name)
        x = torch.empty(t.shape, dtype=_torch_dtypes()[t.dtype])
        self.read_into(name, x.data_ptr(), x.numel() * x.element_size())
        if str(device) != "cpu":
            x = x.to(device)
        return x


class safe_open:
    """Opens a .df11 container, a .safetensors file or a sharded checkpoint
    folder, like safetensors.safe_open: a context manager with keys(),
    get_tensor(name) and metadata(). framework "pt" gives torch tensors,
    "np" numpy arrays (BF16 as ml_dtypes.bfloat16)."""

    def __init__(self, path, framework="pt", device="cpu", threads=None):
        framework = {"pt": "pt", "torch": "pt", "pytorch": "pt",
                     "np": "np", "numpy": "np"}.get(framework)
        if framework is None:
            raise ValueError("framework must be \"pt\" or \"np\"")
        if framework == "np" and str(device) != "cpu":
            raise ValueError("framework \"np\" reads to the CPU only")
        self.framework = framework
        self.device = device
        self._ck = Checkpoint(path, threads)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self._ck.close()

    def keys(self):
        return self._ck.keys()

    def offset_keys(self):
        return self._ck.keys()

    def metadata(self):
        return self._ck.metadata()

    def get_tensor(self, name):
        if self.framework == "np":
            return self._ck.read_numpy(name)
        return self._ck.read_torch(name, self.device)

    def describe(self, name):
        """dtype, shape, compressed and sizes of one tensor (a TensorDesc)."""
        return self._ck.desc(name)


def _load_file(path, framework, device="cpu", threads=None):
    with safe_open(path, framework=framework, device=device,
                   threads=threads) as f:
        return {k: f.get_tensor(k) for k in f.keys()}


# -------------------------------------------------------------- pipelines

def _progress_bar(total_desc, show):
    """A tqdm bar when show is True, or None when it is None and stderr is
    not a terminal (or tqdm is missing)."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024,
                desc=total_desc)


class _Progress:
    """The C progress callback: drives a tqdm bar and carries a Python
    exception raised inside it (KeyboardInterrupt) out, cancelling the
    run."""

    def __init__(self, desc, show, callback):
        self.bar = _progress_bar(desc, show)
        self.callback = callback
        self.exc = None
        self.fn = _lib.progress_fn(self._call)

    def _call(self, ctx, done, total):
        try:
            if self.bar is not None:
                if self.bar.total != total:
                    self.bar.total = total
                self.bar.update(done - self.bar.n)
            if self.callback is not None and self.callback(done, total):
                return 1
            return 0
        except BaseException as e:  # noqa: BLE001 - re-raised after the run
            self.exc = e
            return 1

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _options(threads, force, prog):
    o = _lib.pack_options(threads=_threads(threads), force=1 if force else 0)
    o.progress = prog.fn
    return o


def _stats_dict(st):
    return {f: int(getattr(st, f)) for f, _ in _lib.pack_stats._fields_}


def _run(fn, input, output, threads, force, progress, callback, what):
    prog = _Progress(what, progress, callback)
    st = _lib.pack_stats()
    try:
        r = fn(os.fsencode(os.fspath(input)), os.fsencode(os.fspath(output)),
               ctypes.byref(_options(threads, force, prog)), ctypes.byref(st))
    finally:
        prog.close()
    if prog.exc is not None:
        raise prog.exc
    _check(r)
    return _stats_dict(st)


def pack(input, output, threads=None, force=False, progress=None,
         callback=None):
    """Compresses a .safetensors file or checkpoint folder into a .df11
    container (df11-encode). Returns the run's statistics as a dict.
    progress: True/False to force the tqdm bar on/off (default: when stderr
    is a terminal). callback(done, total) returning True cancels."""
    return _run(lib.df11_pack, input, output, threads, force, progress,
                callback, "df11 pack")


def unpack(input, output, threads=None, force=False, progress=None,
           callback=None):
    """Rebuilds the original file or folder from a .df11 container, byte
    for byte, every checksum checked (df11-decode)."""
    return _run(lib.df11_unpack, input, output, threads, force, progress,
                callback, "df11 unpack")


def verify(input, against=None, threads=None, progress=None, callback=None,
           report=None):
    """Decodes every tensor of a container against its checksums, and with
    ``against`` compares with the original checkpoint bit for bit
    (df11-verify). True if intact, False if something differs (each
    failure goes to report(what, message) when given); raises Error for
    I/O or usage errors."""
    prog = _Progress("df11 verify", progress, callback)
    failures = []

    def _report(ctx, what, code, message):
        w = what.decode("utf-8", "replace") if what else ""
        m = message.decode("utf-8", "replace") if message else ""
        failures.append((w, m))
        if report is not None:
            try:
                report(w, m)
            except BaseException as e:  # noqa: BLE001
                prog.exc = prog.exc or e

    rep = _lib.verify_report_fn(_report)
    n_bad = ctypes.c_uint64(0)
    try:
        r = lib.df11_verify(
            os.fsencode(os.fspath(input)),
            os.fsencode(os.fspath(against)) if against is not None else None,
            ctypes.byref(_options(threads, False, prog)), rep, None,
            ctypes.byref(n_bad))
    finally:
        prog.close()
    if prog.exc is not None:
        raise prog.exc
    if r == _lib.OK:
        return True
    if r in (_lib.CHECKSUM, _lib.BAD_DATA) and (n_bad.value or failures):
        return False
    _check(r)
    return False
