"""PyTorch integration: safetensors.torch-style loading, and models whose
BF16 Linear / Embedding weights stay df11-encoded in memory.

compress_model(model) and load_model(model, path) replace each such weight
by its encoded bytes (a uint8 tensor) and install a forward pre-hook that
decodes it, just before the layer runs, into one scratch buffer shared by
every layer of the model; a forward hook then drops the layer's view of the
scratch. On the CPU decoding uses libdf11's threaded decoder; on CUDA,
libdf11_cuda on PyTorch's current stream (no synchronisation, no
allocation per call).

Inference only: the decoded weight lives in a buffer the next layer
overwrites, so autograd must not keep it (run under torch.no_grad() or
torch.inference_mode()), and one forward pass runs at a time per model.
"""

import ctypes
import dataclasses

import torch
from torch import nn

from . import _lib
from ._core import Checkpoint, Error, _check, _load_file, _threads, decoder
from ._lib import lib

__all__ = ["load_file", "compress_model", "load_model", "CompressStats",
           "is_compressed", "decompress_weight"]


def load_file(filename, device="cpu", threads=None):
    """Every tensor of a .df11 container, .safetensors file or checkpoint
    folder as a dict of torch tensors on device (safetensors.torch's
    contract)."""
    return _load_file(filename, "pt", device=device, threads=threads)


@dataclasses.dataclass
class CompressStats:
    """Sizes of a model's parameters and buffers (distinct storages, bytes)
    before and after compress_model / load_model. ``after_bytes`` counts
    the encoded weights; ``scratch_bytes`` is the one shared decode buffer,
    not included in after_bytes."""
    before_bytes: int
    after_bytes: int
    scratch_bytes: int
    n_compressed: int
    weights_before_bytes: int
    weights_after_bytes: int

    @property
    def ratio(self):
        return self.after_bytes / self.before_bytes if self.before_bytes else 1.0


def _model_bytes(model):
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.device.type == "meta":
            continue
        key = (t.device, t.untyped_storage().data_ptr())
        if key in seen:
            continue
        seen.add(key)
        total += t.untyped_storage().nbytes()
    return total


def _encode_tensor(weight, threads):
    """df11-encodes a BF16 tensor into a new, exactly sized uint8 tensor."""
    w = weight.detach()
    if w.device.type != "cpu":
        w = w.cpu()
    w = w.contiguous()
    n = w.numel()
    cap = lib.df11_encode_bound(n)
    buf = torch.empty(cap, dtype=torch.uint8)
    size = ctypes.c_size_t(0)
    opt = _lib.encode_options(threads=threads)
    _check(lib.df11_encode(w.data_ptr(), n, ctypes.byref(opt),
                           buf.data_ptr(), cap, ctypes.byref(size)))
    return buf[:size.value].clone()


class _Entry:
    __slots__ = ("encoded", "shape", "n_elems", "cuda_index")

    def __init__(self, encoded, shape):
        self.encoded = encoded
        self.shape = tuple(shape)
        self.n_elems = 1
        for s in self.shape:
            self.n_elems *= s
        self.cuda_index = None


class _State:
    """The compressed weights of one model: entries, the shared scratch
    buffer and the decoder (CPU) or uploaded tensors (CUDA)."""

    def __init__(self, device, threads):
        self.device = torch.device(device)
        self.threads = threads
        self.entries = []
        self.scratch = None
        self.cuda = None        # libdf11_cuda, on CUDA
        self.cuda_model = None  # df11_cuda_model *
        self.cuda_blob = None   # the device memory it lives in
        self.hooks = []

    def add(self, encoded, shape):
        self.entries.append(_Entry(encoded, shape))
        return len(self.entries) - 1

    def finish(self):
        largest = max((e.n_elems for e in self.entries), default=0)
        if self.device.type == "cuda":
            self._upload()
        self.scratch = torch.empty(max(largest, 1), dtype=torch.bfloat16,
                                   device=self.device)

    def _upload(self):
        cl = _lib.cuda_lib()
        if cl.df11_cuda_available() != _lib.OK:
            raise Error(_lib.NO_DEVICE, lib.df11_last_error().decode())
        if self.device.index not in (None, 0):
            raise NotImplementedError(
                "libdf11_cuda decodes on the process's first visible GPU; "
                "select the GPU with CUDA_VISIBLE_DEVICES")
        n = len(self.entries)
        if n == 0:
            return
        cpu = [e.encoded for e in self.entries]
        ptrs = (ctypes.c_void_p * n)(*[t.data_ptr() for t in cpu])
        sizes = (ctypes.c_size_t * n)(*[t.numel() for t in cpu])
        need = cl.df11_cuda_upload_size(ptrs, sizes, n)
        if need == 0 and n:
            raise Error(_lib.BAD_DATA, "df11_cuda_upload_size: malformed "
                        "encoded tensor")
        blob = torch.empty(max(need, 1), dtype=torch.uint8,
                           device=self.device)
        h = ctypes.c_void_p()
        _check_cuda(cl, cl.df11_cuda_upload(ptrs, sizes, n, blob.data_ptr(),
                                            need, ctypes.byref(h)))
        self.cuda, self.cuda_model, self.cuda_blob = cl, h, blob
        for i, e in enumerate(self.entries):
            e.cuda_index = i
            e.encoded = None  # the device copy is the one kept

    def weight(self, idx):
        """Decodes entry idx into the scratch buffer; returns the view."""
        e = self.entries[idx]
        out = self.scratch[:e.n_elems]
        if self.cuda_model is not None:
            stream = torch.cuda.current_stream(self.device).cuda_stream
            _check_cuda(self.cuda, self.cuda.df11_cuda_decode(
                self.cuda_model, e.cuda_index, out.data_ptr(), stream))
        else:
            d = decoder(self.threads)
            _check(lib.df11_decode(d.handle, e.encoded.data_ptr(),
                                   e.encoded.numel(), out.data_ptr(),
                                   e.n_elems))
        return out.view(e.shape)

    def check(self):
        """CUDA: waits for the stream and reports a decode that found a
        corrupt stream since the last check (df11_cuda_check)."""
        if self.cuda_model is not None:
            stream = torch.cuda.current_stream(self.device).cuda_stream
            _check_cuda(self.cuda, self.cuda.df11_cuda_check(
                self.cuda_model, stream))

    def encoded_bytes(self):
        if self.cuda_blob is not None:
            return self.cuda_blob.numel()
        return sum(e.encoded.numel() for e in self.entries)

    def __del__(self):
        h, self.cuda_model = getattr(self, "cuda_model", None), None
        if h and self.cuda is not None:
            self.cuda.df11_cuda_model_free(h)


def _check_cuda(cl, code):
    # libdf11_cuda reports through libdf11's df11_last_error.
    if code != _lib.OK:
        raise Error(code, lib.df11_last_error().decode("utf-8", "replace"))


def _install(module, state, idx, shape):
    """Replaces module.weight by the entry's decode-before-use hooks."""
    module._parameters.pop("weight", None)
    placeholder = torch.empty(shape, dtype=torch.bfloat16, device="meta")
    module.weight = placeholder
    module.df11_index = idx

    def pre(mod, args, _idx=idx):
        mod.weight = state.weight(_idx)

    def post(mod, args, output, _ph=placeholder):
        mod.weight = _ph

    state.hooks.append(module.register_forward_pre_hook(pre))
    state.hooks.append(module.register_forward_hook(post))


def _targets(model):
    """(module, weight) of every nn.Linear / nn.Embedding with a BF16
    weight, tied weights included once per module."""
    out = []
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            w = mod._parameters.get("weight")
            if w is not None and w.dtype == torch.bfloat16:
                out.append((mod, w))
    return out


def is_compressed(model):
    return getattr(model, "_df11_state", None) is not None


def decompress_weight(module):
    """A compressed layer's weight, decoded into a new tensor (for checks
    and export; the model itself never keeps one)."""
    model_state = getattr(module, "_df11_owner_state", None)
    if model_state is None:
        raise ValueError("not a df11-compressed layer")
    return model_state.weight(module.df11_index).clone()


def _finish(model, state, before, weights_before, n):
    if state.scratch is None:
        state.finish()
    for mod in model.modules():
        if hasattr(mod, "df11_index"):
            mod._df11_owner_state = state
    model._df11_state = state
    after = _model_bytes(model) + (state.cuda_blob.numel()
                                   if state.cuda_blob is not None else 0)
    return CompressStats(before_bytes=before, after_bytes=after,
                         scratch_bytes=state.scratch.numel() * 2,
                         n_compressed=n, weights_before_bytes=weights_before,
                         weights_after_bytes=state.encoded_bytes())


def _model_device(model, targets):
    devs = {w.device for _, w in targets}
    if len(devs) > 1:
        raise ValueError("compress_model: weights on several devices (%s)"
                         % ", ".join(sorted(map(str, devs))))
    return devs.pop() if devs else torch.device("cpu")


def compress_model(model, threads=None):
    """Encodes every BF16 nn.Linear / nn.Embedding weight of model in place
    and keeps it compressed on the device it is on; each is decoded into
    one shared scratch buffer just before its layer runs. Tied weights
    (lm_head sharing embed_tokens) are encoded once. Returns a
    CompressStats with the sizes before and after."""
    if is_compressed(model):
        raise ValueError("model is already df11-compressed")
    threads = _threads(threads) if threads is not None else \
        max(1, torch.get_num_threads())
    targets = _targets(model)
    device = _model_device(model, targets)
    if device.type == "meta":
        raise ValueError("compress_model: the model is on the meta device; "
                         "use load_model(model, path)")
    before = _model_bytes(model)
    state = _State(device, threads)
    by_param, weights_before = {}, 0
    for mod, w in targets:
        if id(w) not in by_param:
            idx = state.add(_encode_tensor(w, threads), w.shape)
            if device.type != "cuda":
                state.entries[idx].encoded = state.entries[idx].encoded.to(
                    device)
            by_param[id(w)] = idx
            weights_before += w.numel() * 2
    # Upload (CUDA) and allocate the scratch before touching the model, so
    # that a failure leaves it as it was.
    state.finish()
    for mod, w in targets:
        idx = by_param[id(w)]
        _install(mod, state, idx, w.shape)
        if device.type != "cuda":
            mod.register_buffer("df11_encoded", state.entries[idx].encoded,
                                persistent=False)
    return _finish(model, state, before, weights_before, len(by_param))


def _materialise_buffers(model, device):
    """Buffers still on the meta device after loading (those a checkpoint
    does not hold: rotary inv_freq and the like) are allocated and
    initialised the way transformers initialises missing tensors."""
    init = getattr(model, "_init_weights", None)
    for mod in model.modules():
        meta = [n for n, b in mod._buffers.items()
                if b is not None and b.device.type == "meta"]
        if not meta:
            continue
        for n in meta:
            b = mod._buffers[n]
            mod._buffers[n] = torch.empty_like(b, device=device)
        if init is None:
            raise ValueError("%s: buffers %s are not in the checkpoint and "
                             "the model has no _init_weights"
                             % (type(mod).__name__, meta))
        with torch.no_grad():
            init(mod)


def load_model(model, path, device="cpu", threads=None, strict=True):
    """Fills a model created on the meta device, e.g.

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config,
                                                     dtype=torch.bfloat16)

    from a .df11 container (or a .safetensors file / checkpoint folder):
    BF16 Linear / Embedding weights stay encoded (their stored bytes are
    copied straight to the layers, checked against the container's
    checksums), other tensors are read as they are. Buffers the checkpoint
    does not hold are initialised as transformers would (rotary inv_freq).
    strict: every parameter must be in the checkpoint. Returns a
    CompressStats (before_bytes: the model as plain BF16)."""
    if is_compressed(model):
        raise ValueError("model is already df11-compressed")
    device = torch.device(device)
    threads = _threads(threads) if threads is not None else \
        max(1, torch.get_num_threads())
    groups = {}  # id(param) -> [param, [(module, attr, fullname)]]
    for mname, mod in model.named_modules(remove_duplicate=False):
        for attr, p in mod._parameters.items():
            if p is None:
                continue
            full = (mname + "." if mname else "") + attr
            g = groups.setdefault(id(p), [p, []])
            if all(m is not mod or a != attr for m, a, _ in g[1]):
                g[1].append((mod, attr, full))
    state = _State(device, threads)
    before = weights_before = n_comp = 0
    missing = []
    check_buf = []  # one reused buffer for the checksum decodes
    with Checkpoint(path, threads) as ck:
        names = set(ck.keys())
        persistent = {}
        for mname, mod in model.named_modules():
            for bname in mod._buffers:
                if bname not in mod._non_persistent_buffers_set:
                    persistent[(mname + "." if mname else "") + bname] = \
                        (mod, bname)
        for p, users in groups.values():
            name = next((f for _, _, f in users if f in names), None)
            if name is None:
                missing.append(users[0][2])
                continue
            desc = ck.desc(name)
            if tuple(desc.shape) != tuple(p.shape):
                raise ValueError("%s: shape %s in the checkpoint, %s in the "
                                 "model" % (name, list(desc.shape),
                                            list(p.shape)))
            before += p.numel() * p.element_size()
            compressible = (desc.dtype == "BF16" and p.dtype == torch.bfloat16
                            and all(isinstance(m, (nn.Linear, nn.Embedding))
                                    and a == "weight" for m, a, _ in users))
            if compressible:
                enc = _stored_or_encoded(ck, desc, threads, check_buf)
                idx = state.add(enc, p.shape)
                n_comp += 1
                weights_before += p.numel() * 2
                for mod, _, _ in users:
                    _install(mod, state, idx, p.shape)
                    if device.type != "cuda":
                        mod.register_buffer("df11_encoded", enc.to(device),
                                            persistent=False)
                continue
            x = ck.read_torch(name)
            if x.dtype != p.dtype:
                x = x.to(p.dtype)
            param = nn.Parameter(x.to(device), requires_grad=p.requires_grad
                                 and x.is_floating_point())
            for mod, attr, _ in users:
                mod._parameters[attr] = param
        for bname, (mod, attr) in persistent.items():
            if bname in names and mod._buffers[attr] is not None:
                b = mod._buffers[attr]
                x = ck.read_torch(bname)
                mod._buffers[attr] = x.to(device=device, dtype=b.dtype)
    if missing and strict:
        raise KeyError("%s: missing from the checkpoint: %s"
                       % (path, ", ".join(missing[:10])
                          + (" ..." if len(missing) > 10 else "")))
    if device.type != "cuda":
        for mod in model.modules():
            enc = mod._buffers.get("df11_encoded")
            if enc is not None and hasattr(mod, "df11_index"):
                state.entries[mod.df11_index].encoded = enc
    _materialise_buffers(model, device)
    before += sum(b.numel() * b.element_size()
                  for n, b in model.named_buffers()
                  if not n.endswith("df11_encoded"))
    stats = _finish(model, state, before, weights_before, n_comp)
    return stats


def _stored_or_encoded(ck, desc, threads, check_buf):
    """A compressed tensor's stored bytes (checked: decoded once, into one
    reused buffer, against the container's checksum), or a BF16 tensor of a
    plain checkpoint, encoded here."""
    if desc.compressed:
        enc = torch.from_numpy(ck.encoded(desc.name))
        if not check_buf or check_buf[0].numel() < desc.n_elems:
            check_buf[:] = [torch.empty(desc.n_elems, dtype=torch.bfloat16)]
        ck.read_into(desc.name, check_buf[0].data_ptr(), desc.nbytes)
        return enc
    return _encode_tensor(ck.read_torch(desc.name), threads)

