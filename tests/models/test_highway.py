"""The linear highway: a least-squares AR/VAR prior that the token models refine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ephys_core import get_registry
from ephys_models.generation import Sampler
from ephys_models.highway import LinearHighway
from ephys_tokenizers import mulaw

V = 1024  # fine codes: quantisation barely blurs the known coefficients
TRUE_A1 = np.array([[0.6, 0.3], [0.0, 0.5]])
TRUE_A2 = np.array([[-0.2, 0.0], [0.25, -0.3]])
NOISE_SD = 0.05


def var2_codes(n_windows=200, n_times=64, seed=0, vocab=V, rho=0.0) -> torch.Tensor:
    """Windows of a known stable VAR(2), mu-law coded: ``(n_windows, 2, n_times)``; ``rho``
    correlates the two channels' innovations."""
    rng = np.random.default_rng(seed)
    total = n_windows * n_times + 100
    x = np.zeros((total, 2))
    mix = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    for t in range(2, total):
        noise = mix @ rng.normal(0, NOISE_SD, 2)
        x[t] = TRUE_A1 @ x[t - 1] + TRUE_A2 @ x[t - 2] + noise
    windows = x[100:].reshape(n_windows, n_times, 2).transpose(0, 2, 1)
    return torch.as_tensor(mulaw.encode(np.clip(windows, -1, 1), vocab - 1)).long()


def fitted(kind="var", order=2, codes=None, **kwargs) -> LinearHighway:
    highway = LinearHighway(2, V, order, kind, **kwargs)
    codes = var2_codes() if codes is None else codes
    highway.fit(iter(codes.split(16)), max_batches=1000)
    return highway


def test_the_var_highway_recovers_known_coefficients_and_noise():
    highway = fitted(order=2)
    assert bool(highway.fitted)
    weight = highway.weight[1].numpy()  # order 2: lag 0 then lag 1, each over 2 channels
    np.testing.assert_allclose(weight[:, :2], TRUE_A1, atol=0.03)
    np.testing.assert_allclose(weight[:, 2:], TRUE_A2, atol=0.03)
    np.testing.assert_allclose(highway.log_scale[1].exp().numpy(), NOISE_SD, rtol=0.05)


def test_the_fit_estimates_how_the_innovations_correlate_across_channels():
    highway = fitted(codes=var2_codes(rho=0.7))
    correlation = highway.noise_factor @ highway.noise_factor.T
    assert abs(float(correlation[0, 1]) - 0.7) < 0.03
    assert abs(float(fitted().noise_factor[1, 0])) < 0.05


def test_the_ar_highway_ignores_the_other_channels():
    highway = fitted("ar", order=3)
    weight = highway.weight[2].view(2, 3, 2)  # (channel out, lag, channel in)
    assert torch.all(weight[0, :, 1] == 0) and torch.all(weight[1, :, 0] == 0)
    assert torch.all(weight[0, :, 0] != 0)
    # channel 0 depends on channel 1, so its own past leaves more noise than the VAR does
    assert float(highway.log_scale[2, 0]) > float(fitted(order=2).log_scale[1, 0]) + 0.02


def test_short_pasts_use_the_lower_order_companions():
    highway = fitted(order=4)
    codes = var2_codes(n_windows=1, n_times=6, seed=1)
    mean, log_scale, _ = highway(codes)
    a = highway.amplitude[codes[0]]  # (C, T)
    # position 0 has one past sample: the order-1 model, not order 4 fed zeros
    expected = highway.weight[0][:, :2] @ a[:, 0] + highway.bias[0]
    torch.testing.assert_close(mean[0, :, 0], expected)
    assert torch.equal(log_scale[0, :, 0], highway.log_scale[0])
    assert torch.equal(log_scale[0, :, 5], highway.log_scale[3])
    assert bool((highway.log_scale[0] > highway.log_scale[3]).all())  # AR(1) is worse here


def test_streaming_the_state_equals_one_pass():
    highway = fitted(order=3)
    codes = var2_codes(n_windows=2, n_times=12, seed=2)
    mean, log_scale, _ = highway(codes)
    state, pieces = None, []
    for chunk in (codes[..., :1], codes[..., 1:5], codes[..., 5:6], codes[..., 6:]):
        m, _, state = highway(chunk, state)
        pieces.append(m)
    torch.testing.assert_close(torch.cat(pieces, dim=-1), mean)


def test_causal_each_output_depends_only_on_the_past():
    highway = fitted(order=3)
    codes = var2_codes(n_windows=1, n_times=10, seed=3)
    changed = codes.clone()
    changed[..., 6] = (changed[..., 6] + 300) % V
    before, _, _ = highway(codes)
    after, _, _ = highway(changed)
    torch.testing.assert_close(before[..., :6], after[..., :6])
    assert not torch.allclose(before[..., 6:9], after[..., 6:9])


def test_distributed_statistics_sum_to_the_fit_on_all_data():
    codes = var2_codes()
    first, second = codes[:100], codes[100:]
    recorded = []

    def record(value):
        recorded.append(value)
        return value

    LinearHighway(2, V, 2).fit(iter(second.split(16)), 1000, reduce=record)
    # "rank 0" sees the first half; the reduction adds what "rank 1" computed
    remote = iter(recorded)
    split = LinearHighway(2, V, 2)
    split.fit(iter(first.split(16)), 1000, reduce=lambda v: v + next(remote))
    whole = fitted(order=2, codes=codes)
    torch.testing.assert_close(split.weight, whole.weight)
    torch.testing.assert_close(split.log_scale, whole.log_scale)


def test_too_little_data_is_explained():
    with pytest.raises(ValueError, match="too short for the linear highway of order 8"):
        LinearHighway(2, V, 8).fit(iter([var2_codes(1, 6)]), 10)
    with pytest.raises(ValueError, match="needs at least 30 training examples for order 1"):
        LinearHighway(2, V, 8).fit(iter([var2_codes(1, 12)]), 10)


def test_short_training_data_caps_the_order_it_fits(caplog):
    # 2 windows x (28 - 8) = 40 examples: 10 per coefficient allows VAR order 1 only
    highway = LinearHighway(2, V, 8)
    highway.fit(iter([var2_codes(2, 28)]), 10)
    assert "determine orders up to 1, not 8" in caplog.text
    assert torch.equal(highway.weight[7], highway.weight[0])
    assert torch.all(highway.weight[0][:, 2:] == 0) and torch.all(highway.weight[0][:, :2] != 0)


def test_a_config_refuses_windows_too_short_for_its_order():
    config = get_registry("models").config_model("wavenet")(
        n_channels=2, vocab_size=16, highway="var", highway_order=16
    )
    spec = {"n_channels": 2, "vocab_size": 16, "n_times": 10, "codes": "mulaw"}
    assert "highway_order is 16" in " ".join(config.check_data(spec))
    assert "mu-law" in " ".join(config.check_data({**spec, "n_times": 40, "codes": None}))
    assert config.check_data({**spec, "n_times": 40}) == []


# -- the token models over a highway --------------------------------------------------------

MODELS = ["gpt2meg", "stgpt2meg", "wavenet"]
HEADS = ["mixture", "softmax"]


def build(name: str, head: str, vocab: int = 64, fit: bool = True, rho: float = 0.0):
    cls = get_registry("models").load(name)
    update = {"n_channels": 2, "vocab_size": vocab, "head": head, "highway": "var"}
    update |= {"highway_order": 3, "n_conditions": 0, "n_subjects": 0}
    config = cls.example_config().model_copy(update=update)
    torch.manual_seed(0)
    model = cls(cls.Config.model_validate(config.model_dump())).eval()
    assert model.needs_data_fit
    if fit:
        model.fit_to_data(iter(var2_codes(vocab=vocab, n_times=24, rho=rho).split(16)))
        assert not model.needs_data_fit
    return model


def cross_entropy(log_probs: torch.Tensor, codes: torch.Tensor) -> float:
    targets = codes[..., 1:]
    picked = torch.log_softmax(log_probs[..., :-1, :], -1).gather(-1, targets.unsqueeze(-1))
    return float(-picked.mean())


@pytest.mark.parametrize("name", MODELS)
def test_an_untrained_model_over_a_fitted_highway_starts_at_the_var(name):
    model = build(name, "mixture")
    codes = var2_codes(n_windows=8, n_times=24, seed=5, vocab=64)
    with torch.no_grad():
        model_ce = cross_entropy(model(codes), codes)
        mean, log_scale, _ = model.highway(codes)
        prior_ce = cross_entropy(model.mixture.prior_log_probs((mean, log_scale)), codes)
        without = build(name, "mixture", fit=False)
        without.highway = None
        blind_ce = cross_entropy(without(codes), codes)
    assert abs(model_ce - prior_ce) < 0.05
    assert model_ce < blind_ce - 0.5  # the network alone starts far from the VAR
    assert prior_ce < math.log(64) - 0.5  # the prior is informative


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", MODELS)
def test_models_over_a_highway_stay_causal_and_generate_the_same_with_the_cache(name, head):
    model = build(name, head)
    x = var2_codes(n_windows=2, n_times=12, seed=6, vocab=64)
    with torch.no_grad():
        out = model(x)
        changed = x.clone()
        changed[..., 8:] = (changed[..., 8:] + 5) % 64
        later = model(changed)
    torch.testing.assert_close(out[..., :8, :], later[..., :8, :])
    assert not torch.allclose(out[..., 8:, :], later[..., 8:, :])
    argmax = Sampler(strategy="argmax")
    context = x[..., :6]
    n_steps = model.max_context - 6 + 1
    cached = model.forecast(context, n_steps, sampler=argmax)
    assert torch.equal(cached, model.forecast(context, n_steps, sampler=argmax, use_cache=False))


def test_the_highway_is_saved_with_the_model():
    model = build("wavenet", "mixture")
    state = model.state_dict()
    assert {"highway.weight", "highway.bias", "highway.log_scale", "highway.fitted"} <= set(state)
    fresh = build("wavenet", "mixture", fit=False)
    fresh.load_state_dict(state)
    assert not fresh.needs_data_fit
    torch.testing.assert_close(fresh.highway.weight, model.highway.weight)


@pytest.mark.parametrize("name", MODELS)
def test_generation_draws_the_channels_of_a_step_together(name):
    model = build(name, "mixture", vocab=256, rho=0.8)
    context = var2_codes(n_windows=64, n_times=8, seed=7, vocab=256, rho=0.8)

    def innovation_correlation(innovations: str) -> float:
        sampler = Sampler(seed=0, innovations=innovations)
        generated = model.forecast(context, 12, sampler=sampler)
        full = torch.cat([context, generated], dim=-1)
        with torch.no_grad():
            mean, _, _ = model.highway(full)
        residual = model.highway.amplitude[full[..., 9:]] - mean[..., 8:-1]
        return float(torch.corrcoef(residual.permute(1, 0, 2).reshape(2, -1))[0, 1])

    assert abs(innovation_correlation("correlated") - 0.8) < 0.1
    assert abs(innovation_correlation("independent")) < 0.1
