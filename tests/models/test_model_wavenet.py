"""WaveNet specifics: mixed channels, the receptive field, and constant-cost generation."""

from __future__ import annotations

import torch

from ephys_models.generation import Sampler
from ephys_models.wavenet import WaveNet


def build(seed: int = 0, **overrides) -> WaveNet:
    torch.manual_seed(seed)
    config = WaveNet.Config(**{**WaveNet.example_config().model_dump(), **overrides})
    return WaveNet(config).eval()


def test_channels_are_mixed():
    model = build()
    x = torch.randint(0, 16, (1, 3, 12))
    changed = x.clone()
    changed[:, 0, 6] = (changed[:, 0, 6] + 1) % 16
    with torch.no_grad():
        a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, :, :6], b[:, :, :6])
    assert not torch.allclose(a[:, 2, 6], b[:, 2, 6])


def test_outputs_depend_on_the_receptive_field_only():
    model = build()
    rf = model.receptive_field
    assert rf == 1 + (1 + 2 + 4) * 2
    x = torch.randint(0, 16, (1, 3, 40))
    t = 35
    with torch.no_grad():
        out = model(x)[:, :, t]
        old = x.clone()
        old[..., : t - rf + 1] = (old[..., : t - rf + 1] + 1) % 16  # older than the field
        assert torch.allclose(model(old)[:, :, t], out)
        inside = x.clone()
        inside[..., t - rf + 1] = (inside[..., t - rf + 1] + 1) % 16  # oldest sample in it
        assert not torch.allclose(model(inside)[:, :, t], out)


def test_defaults_cover_511_samples():
    config = WaveNet.Config()
    assert 1 + (config.kernel_size - 1) * sum(config.dilations) == 511
    model = build()
    assert model.max_context == 2 * model.receptive_field
    assert build(generation_window=20).max_context == 20


def test_cache_equals_recomputation_even_after_the_window_slides():
    model = build()
    context = torch.randint(0, 16, (2, 3, 9))
    n = 3 * model.max_context
    for sampler in (Sampler(strategy="argmax"), Sampler(strategy="top_k", top_k=4, seed=5)):
        assert torch.equal(
            model.forecast(context, n, sampler=sampler),
            model.forecast(context, n, sampler=sampler, use_cache=False),
        )


def test_step_state_has_a_fixed_size():
    model = build()
    x = torch.randint(0, 16, (2, 3, 5))
    with torch.no_grad():
        _, state = model._prefill(x)
        sizes = [q.shape for q in state[0]]
        for _ in range(50):
            _, state = model._step(x[..., -1:], state)
    queues = state[0]  # the layers' queues (then the highway's history: none here)
    assert [q.shape for q in queues] == sizes
    assert [q.shape[-1] for q in queues] == [d for d in model.config.dilations]
