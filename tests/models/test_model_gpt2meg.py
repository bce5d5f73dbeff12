"""GPT2MEG specifics: the Hugging Face backbone and its cache, channels as separate sequences."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from transformers import Cache, GPT2Model

from ephys_models.generation import Sampler
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
        _, cache = model._prefill(x)
        assert isinstance(cache, Cache) and cache.get_seq_length() == 7
        _, cache = model._step(x[..., -1:], cache)
    assert cache.get_seq_length() == 8


def test_inputs_longer_than_the_context_are_rejected():
    model = build()
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, 3, 33, dtype=torch.long))


def test_untied_head():
    tied, untied = build(), build(tie_embeddings=False)
    assert untied.head is not None and tied.head is None
    extra = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert extra == 16 * 16  # d_model x vocab_size
    out = untied.forecast(torch.randint(0, 16, (1, 3, 4)), 5, sampler=Sampler(seed=0))
    assert out.shape == (1, 3, 5)


def test_eager_and_sdpa_attention_agree():
    x = torch.randint(0, 16, (2, 3, 12))
    with torch.no_grad():
        a = build(attn_implementation="sdpa")(x)
        b = build(attn_implementation="eager")(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_config_checks_heads_and_documents_every_field():
    with pytest.raises(ValidationError, match="divisible"):
        GPT2MEG.Config(d_model=10, n_heads=3)
    defaults = GPT2MEG.Config()
    assert (defaults.vocab_size, defaults.n_conditions, defaults.n_subjects) == (256, 0, 0)
    assert all(f.description for f in GPT2MEG.Config.model_fields.values())
