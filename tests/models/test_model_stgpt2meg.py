"""STGPT2MEG specifics: attention across channels within a step, the temporal KV cache."""

from __future__ import annotations

import pytest
import torch

from ephys_models.stgpt2meg import STGPT2MEG


def build(seed: int = 0, **overrides) -> STGPT2MEG:
    torch.manual_seed(seed)
    config = STGPT2MEG.Config(**{**STGPT2MEG.example_config().model_dump(), **overrides})
    return STGPT2MEG(config).eval()


def test_channels_interact_within_a_time_step_only():
    model = build()
    x = torch.randint(0, 16, (1, 3, 10))
    changed = x.clone()
    changed[:, 0, 6] = (changed[:, 0, 6] + 1) % 16
    with torch.no_grad():
        a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, :, :6], b[:, :, :6])  # never across time backwards
    assert not torch.allclose(a[:, 1, 6], b[:, 1, 6])  # other channels see step 6


def test_temporal_cache_grows_by_one_step_and_is_bounded():
    model = build()
    x = torch.randint(0, 16, (2, 3, 30))
    with torch.no_grad():
        _, state = model._prefill(x)
        buffers = state[0]  # the blocks' buffers (then the highway's history: none here)
        assert len(buffers) == model.config.n_layers
        assert all(buffer.length == 30 for buffer in buffers)
        _, state = model._step(x[..., -1:], state)
        _, state = model._step(x[..., -1:], state)
        assert all(buffer.length == 32 for buffer in state[0])
        assert state[0][0].k.shape[2] == 32  # storage never exceeds the window
        with pytest.raises(ValueError, match="context_length|cache"):
            model._step(x[..., -1:], state)
