"""GPT2MEG specifics: the Hugging Face backbone and its cache, channels as separate sequences."""

from __future__ import annotations

import torch
from transformers import Cache, GPT2Model

from ephys_models.gpt2meg import GPT2MEG


def build(seed: int = 0, **overrides) -> GPT2MEG:
    torch.manual_seed(seed)
    config = GPT2MEG.Config(**{**GPT2MEG.example_config().model_dump(), **overrides})
    return GPT2MEG(config).eval()


def test_backbone_is_a_hugging_face_gpt2():
    model = build()
    assert isinstance(model.backbone, GPT2Model)
    assert model.backbone.config.n_positions == model.max_context == 32
    assert model.backbone.config.vocab_size == model.config.vocab_size


def test_channels_are_independent_sequences():
    model = build()
    x = torch.randint(0, 16, (1, 3, 10))
    changed = x.clone()
    changed[:, 0] = (changed[:, 0] + 1) % 16
    with torch.no_grad():
        a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, 1:], b[:, 1:])
    assert not torch.allclose(a[:, 0], b[:, 0])


def test_generation_uses_the_transformers_cache():
    model = build()
    x = torch.randint(0, 16, (2, 3, 7))
    with torch.no_grad():
        _, state = model._prefill(x)
        cache, highway = state  # the network's cache and the highway's (none here)
        assert isinstance(cache, Cache) and cache.get_seq_length() == 7 and highway is None
        _, (cache, _) = model._step(x[..., -1:], state)
    assert cache.get_seq_length() == 8


def test_eager_and_sdpa_attention_agree():
    x = torch.randint(0, 16, (2, 3, 12))
    with torch.no_grad():
        a = build(attn_implementation="sdpa")(x)
        b = build(attn_implementation="eager")(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
