"""transformers Llama / Mistral models with df11-compressed weights give
the same logits and greedy tokens as with plain BF16 weights, bit for bit."""
import copy
import os

import pytest
import torch
from torch import nn

import df11
import df11.torch

from conftest import MODELS, same_bits

transformers = pytest.importorskip("transformers")
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

TOKENS = [1, 5, 9, 33, 100, 7, 2, 250, 17, 17, 3, 64]


def reference(path):
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    return m.eval()


def logits(model, tokens=TOKENS):
    with torch.inference_mode():
        return model(torch.tensor([tokens])).logits


def greedy(model, n=10):
    with torch.inference_mode():
        return model.generate(torch.tensor([TOKENS[:4]]), max_new_tokens=n,
                              do_sample=False, min_new_tokens=n)


def meta_model(path):
    cfg = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    return m.eval()


def bf16_weight_params(model):
    return [n for n, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Embedding))
            and isinstance(m._parameters.get("weight"), nn.Parameter)]


@pytest.fixture(scope="module", params=MODELS,
                ids=[os.path.basename(m) for m in MODELS])
def model_dir(request):
    return request.param


@pytest.fixture(scope="module")
def container(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "model.df11"
    df11.pack(model_dir, out)
    return out


def test_compare_can_fail(model_dir):
    """The bit comparison sees one changed row of one weight."""
    ref = reference(model_dir)
    a = logits(ref)
    w = ref.model.layers[0].mlp.down_proj.weight
    with torch.no_grad():
        w[0].neg_()
    assert not same_bits(a, logits(ref))


def test_compress_model(model_dir):
    ref = reference(model_dir)
    want, want_tokens = logits(ref), greedy(ref)
    m = reference(model_dir)
    tied = m.lm_head.weight is m.model.embed_tokens.weight
    n_weights = len({id(mod.weight) for mod in m.modules()
                     if isinstance(mod, (nn.Linear, nn.Embedding))})
    stats = df11.torch.compress_model(m)
    assert stats.n_compressed == n_weights
    assert bf16_weight_params(m) == []
    assert stats.after_bytes < 0.8 * stats.before_bytes
    assert stats.weights_after_bytes < 0.75 * stats.weights_before_bytes
    largest = max(p.numel() for p in ref.parameters()) * 2
    assert stats.scratch_bytes == largest
    if tied:
        assert m.lm_head.df11_encoded is m.model.embed_tokens.df11_encoded
    got = logits(m)
    assert same_bits(got, want)
    assert same_bits(greedy(m), want_tokens)
    # Outside a forward pass no layer holds decoded weights.
    assert all(mod.weight.device.type == "meta" for mod in m.modules()
               if hasattr(mod, "df11_index"))
    # Decoded weights are the original bits.
    assert same_bits(df11.torch.decompress_weight(m.model.layers[1].mlp.up_proj),
                     ref.model.layers[1].mlp.up_proj.weight)
    with pytest.raises(ValueError):
        df11.torch.compress_model(m)


def test_load_model_from_container(model_dir, container):
    ref = reference(model_dir)
    want, want_tokens = logits(ref), greedy(ref)
    m = meta_model(model_dir)
    stats = df11.torch.load_model(m, container)
    assert not [n for n, t in list(m.named_parameters()) + list(m.named_buffers())
                if t.device.type == "meta"]
    for (n, b), (n2, b2) in zip(sorted(m.named_buffers()),
                                sorted(ref.named_buffers())):
        if not n.endswith("df11_encoded"):
            assert n == n2 and same_bits(b, b2), n
    assert stats.after_bytes < 0.8 * stats.before_bytes
    assert same_bits(logits(m), want)
    assert same_bits(greedy(m), want_tokens)
    assert bf16_weight_params(m) == []


def test_load_model_from_safetensors(model_dir):
    ref = reference(model_dir)
    m = meta_model(model_dir)
    df11.torch.load_model(m, model_dir)
    assert same_bits(logits(m), logits(ref))


def test_load_model_errors(model_dir, container, tmp_path):
    m = meta_model(model_dir)
    # A model of another shape: a clear error, no half-loaded surprise.
    cfg = AutoConfig.from_pretrained(model_dir)
    cfg.hidden_size *= 2
    with torch.device("meta"):
        other = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="shape"):
        df11.torch.load_model(other, container)
    bad = tmp_path / "bad.df11"
    raw = bytearray(container.read_bytes())
    with df11.safe_open(container) as f:
        name = "model.layers.0.mlp.gate_proj.weight"
        enc = f._ck.encoded(name).tobytes()
    off = bytes(raw).find(enc)
    raw[off + len(enc) - 5] ^= 0x10
    bad.write_bytes(bytes(raw))
    with pytest.raises(df11.Error):
        df11.torch.load_model(m, bad)


def test_compress_model_deepcopy_independent(model_dir):
    """Two compressed copies of one model decode into their own scratch."""
    ref = reference(model_dir)
    a, b = copy.deepcopy(ref), copy.deepcopy(ref)
    df11.torch.compress_model(a)
    df11.torch.compress_model(b, threads=1)
    want = logits(ref)
    assert same_bits(logits(a), want) and same_bits(logits(b), want)


CUDA_REASON = None
if not torch.cuda.is_available():
    CUDA_REASON = "no CUDA device: the libdf11_cuda path of compress_model " \
                  "did not run"
else:
    try:
        df11._lib.cuda_lib()
    except OSError as e:
        CUDA_REASON = "libdf11_cuda not built (DF11_ENABLE_CUDA=1 pip install " \
                      "./python): %s" % e


@pytest.mark.skipif(CUDA_REASON is not None, reason=CUDA_REASON or "")
def test_compress_model_cuda(model_dir):
    ref = reference(model_dir).to("cuda")
    want = logits_cuda(ref)
    m = reference(model_dir).to("cuda")
    stats = df11.torch.compress_model(m)
    assert stats.weights_after_bytes < stats.weights_before_bytes
    got = logits_cuda(m)
    m._df11_state.check()
    assert same_bits(got, want)
    m2 = meta_model(model_dir)
    df11.torch.load_model(m2, model_dir, device="cuda")
    assert same_bits(logits_cuda(m2), want)


def logits_cuda(model):
    with torch.inference_mode():
        return model(torch.tensor([TOKENS], device="cuda")).logits.cpu()


def test_compress_failure_leaves_model_intact(model_dir, monkeypatch):
    """A failure before the hooks go in (a CUDA upload, say) leaves every
    weight where it was."""
    m = reference(model_dir)
    want = logits(m)

    def fail(self):
        raise df11.Error(df11._lib.NO_DEVICE, "no usable GPU")
    monkeypatch.setattr(df11.torch._State, "finish", fail)
    with pytest.raises(df11.Error, match="GPU"):
        df11.torch.compress_model(m)
    assert not df11.torch.is_compressed(m)
    assert bf16_weight_params(m)
    assert same_bits(logits(m), want)
