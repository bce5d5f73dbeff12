"""The classical and naive baselines: fitted correctly, scored in the model's currency."""

from __future__ import annotations

import numpy as np
import pytest

from ephys_eval.baselines import (
    GaussianBaseline,
    Persistence,
    TokenFrequency,
    TokenStatistics,
    gaussian_code_argmax,
    gaussian_code_nll,
)
from ephys_eval.linear import fit_ar, fit_var
from ephys_tokenizers import mulaw


def simulate_var(coefs, n_segments, length, noise, seed=0, burn=200):
    """``(N, C, L)`` samples of x[t] = sum_k A_k x[t-k] + e, e ~ N(0, noise^2 I)."""
    rng = np.random.default_rng(seed)
    p, c = len(coefs), coefs[0].shape[0]
    x = np.zeros((n_segments, c, length + burn))
    for t in range(p, length + burn):
        x[:, :, t] = sum(x[:, :, t - 1 - k] @ coefs[k].T for k in range(p))
        x[:, :, t] += noise * rng.standard_normal((n_segments, c))
    return x[:, :, burn:]


AR2 = [np.diag([1.6, 1.2]), np.diag([-0.8, -0.5])]  # two damped oscillators
COUPLED = [np.array([[0.5, 0.4], [-0.3, 0.6]])]  # channel 1 drives channel 0 and back


def test_ar_recovers_the_coefficients_and_the_order():
    x = simulate_var(AR2, 16, 1000, noise=0.5)
    model = fit_ar(x, max_order=8)
    assert model.order == 2
    np.testing.assert_allclose(model.coefs[1], [[1.6, -0.8], [1.2, -0.5]], atol=0.03)
    np.testing.assert_allclose(model.sds[1], [0.5, 0.5], rtol=0.03)
    assert model.to_dict()["order"] == 2


def test_var_recovers_cross_channel_coupling_that_ar_cannot_see():
    x = simulate_var(COUPLED, 20, 600, noise=1.0, seed=1)
    var = fit_var(x, orders=(1, 2, 4), ridges=(1e-8, 1e-2))
    assert var.order in (1, 2)
    np.testing.assert_allclose(var.coefs[0], COUPLED[0], atol=0.05)
    ar = fit_ar(x, max_order=4)
    held = simulate_var(COUPLED, 8, 300, noise=1.0, seed=2)
    var_err = np.mean((var.predict(held)[0][..., :-1] - held[..., 1:]) ** 2)
    ar_err = np.mean((ar.predict(held)[0][..., :-1] - held[..., 1:]) ** 2)
    assert var_err < ar_err  # the coupling is information AR does not use
    assert var_err == pytest.approx(1.0, rel=0.1)  # the noise variance: VAR is optimal here


def test_forecasts_use_only_the_window_and_shorter_models_at_its_start():
    x = simulate_var(AR2, 4, 400, noise=0.5, seed=3)
    model = fit_ar(x, max_order=6)
    window = x[:2, :, 100:140]
    mean, sd = model.predict(window)
    assert mean.shape == sd.shape == window.shape
    # step 0 sees one sample: the order-1 model
    expected = model.coefs[0][:, 0] * window[:, :, 0] + model.intercepts[0]
    np.testing.assert_allclose(mean[:, :, 0], expected)
    np.testing.assert_allclose(sd[:, :, 0], np.broadcast_to(model.sds[0], (2, 2)))
    # later steps: the full order on the last p samples, lag 1 first
    p, t = model.order, 20
    recent = window[:, :, t - p + 1 : t + 1][:, :, ::-1]
    full = (recent * model.coefs[p - 1][None]).sum(-1) + model.intercepts[p - 1]
    np.testing.assert_allclose(mean[:, :, t], full)
    # causal: changing the future of the window leaves earlier forecasts alone
    changed = window.copy()
    changed[:, :, 30:] += 5.0
    np.testing.assert_allclose(model.predict(changed)[0][:, :, :30], mean[:, :, :30])


def test_rollouts_keep_the_process_statistics():
    x = simulate_var(AR2, 8, 2000, noise=0.5, seed=4)
    model = fit_var(x, orders=(2, 4), ridges=(1e-8,))
    rng = np.random.default_rng(0)
    rollout = model.simulate(x[:, :, :100], 3000, rng)
    assert rollout.shape == (8, 2, 3000)
    np.testing.assert_allclose(rollout[:, :, 500:].std(axis=(0, 2)), x.std(axis=(0, 2)), rtol=0.1)
    again = model.simulate(x[:, :, :100], 3000, np.random.default_rng(0))
    np.testing.assert_array_equal(rollout, again)


def test_code_probabilities_are_the_gaussian_mass_of_each_bin():
    edges = mulaw.bin_edges(15) * 2.0  # amplitude 2
    rng = np.random.default_rng(5)
    mean = rng.normal(0, 0.5, (3, 2, 4))
    sd = rng.uniform(0.05, 0.5, (3, 2, 4))
    from scipy.stats import norm

    every = np.stack(
        [gaussian_code_nll(mean, sd, np.full(mean.shape, k), edges) for k in range(16)], -1
    )
    np.testing.assert_allclose(np.exp(-every).sum(-1), 1.0, atol=1e-10)  # a distribution
    k = rng.integers(0, 16, mean.shape)
    brute = norm.cdf(edges[k + 1], mean, sd) - norm.cdf(edges[k], mean, sd)
    np.testing.assert_allclose(np.exp(-gaussian_code_nll(mean, sd, k, edges)), brute, atol=1e-12)
    np.testing.assert_array_equal(gaussian_code_argmax(mean, sd, edges), every.argmin(-1))
    # far tails stay finite (no -log 0), and a sharp forecast inside its bin costs ~0
    far = gaussian_code_nll(
        np.full((1, 1, 1), 40.0), np.full((1, 1, 1), 0.1), np.zeros((1, 1, 1), int), edges
    )
    assert np.isfinite(far).all() and far.item() > 100
    centre = (edges[9] + edges[10]) / 2
    sharp = gaussian_code_nll(
        np.full((1, 1, 1), centre), np.full((1, 1, 1), 1e-4), np.full((1, 1, 1), 9), edges
    )
    assert sharp.item() < 1e-6


def test_baselines_in_the_codes_currency_rank_as_they_should():
    """On data from a known linear process, VAR < AR < persistence < token frequency."""
    amplitude, mu = 4.0, 255
    x = simulate_var(
        [np.array([[1.2, 0.3], [-0.4, 1.1]]), np.array([[-0.5, 0.0], [0.1, -0.4]])],
        24,
        800,
        0.3,
        seed=6,
    )
    x /= x.std()
    codes = mulaw.encode(x / amplitude, mu).astype(np.int64)
    decoded = mulaw.decode(codes, mu) * amplitude
    edges = mulaw.bin_edges(mu) * amplitude
    train, test = decoded[:16], slice(16, None)
    stats = TokenStatistics.from_batches([codes[:16]], mu + 1, 2)
    forecasters = [
        GaussianBaseline("var", fit_var(train, orders=(1, 2, 4))),
        GaussianBaseline("ar", fit_ar(train, max_order=8)),
        GaussianBaseline("persistence", Persistence(train)),
        TokenFrequency(stats),
    ]
    nll = [
        f.teacher_forced(codes[test], decoded[test], edges).nll[..., 8:].mean() for f in forecasters
    ]
    assert nll == sorted(nll), dict(zip([f.name for f in forecasters], nll, strict=True))
    rng = np.random.default_rng(0)
    for forecaster in forecasters:
        out = forecaster.rollout(codes[test, :, :50], decoded[test, :, :50], 20, rng)
        assert out.shape == (8, 2, 20)


def test_persistence_spread_is_the_training_step_spread():
    x = simulate_var(AR2, 4, 500, noise=0.5, seed=7)
    baseline = Persistence(x)
    np.testing.assert_allclose(
        baseline.sd, np.diff(x, axis=-1).transpose(1, 0, 2).reshape(2, -1).std(1)
    )
    mean, _ = baseline.predict(x[:, :, :10])
    np.testing.assert_array_equal(mean, x[:, :, :10])


def test_fits_refuse_unusable_data():
    with pytest.raises(ValueError, match="too short"):
        fit_ar(np.zeros((2, 2, 5)), max_order=8)
    bad = simulate_var(AR2, 2, 100, noise=0.5)
    bad[0, 0, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_var(bad, orders=(1, 2))


def test_fits_from_summed_moments_equal_least_squares_on_the_stacked_design():
    x = simulate_var(COUPLED, 6, 300, noise=1.0, seed=5)
    var = fit_var(x, orders=(3,), ridges=(1e-12,))
    lags = np.stack([x[:, :, 2 - k : 299 - k] for k in range(3)], axis=1)  # (S, 3, C, n)
    design = lags.transpose(0, 3, 1, 2).reshape(-1, 6)
    design = np.concatenate([design, np.ones((len(design), 1))], axis=1)
    target = x[:, :, 3:].transpose(0, 2, 1).reshape(-1, 2)
    w, *_ = np.linalg.lstsq(design, target, rcond=None)
    np.testing.assert_allclose(var.coefs[2], w[:-1].T, atol=1e-8)
    np.testing.assert_allclose(var.sds[2], (target - design @ w).std(axis=0), rtol=1e-8)
    ar = fit_ar(x, max_order=3)
    for c in range(2):
        d = np.concatenate(
            [lags[:, :, c].transpose(0, 2, 1).reshape(-1, 3), np.ones((len(design), 1))], axis=1
        )
        wc, *_ = np.linalg.lstsq(d, target[:, c], rcond=None)
        np.testing.assert_allclose(ar.coefs[2][c], wc[:-1], atol=1e-8)


def test_a_long_memory_process_gets_a_long_order_when_the_data_supports_it():
    # a narrow-band oscillation seen through noise has long memory: low orders leave
    # predictable structure behind, so the held-out choice goes well past a short grid
    rng = np.random.default_rng(0)
    t = np.arange(20_000)
    phase = np.cumsum(0.3 + 0.01 * rng.standard_normal((4, 1, t.size)), axis=-1)
    x = np.sin(phase) + 0.3 * rng.standard_normal((4, 1, t.size))
    x = np.concatenate([x, 0.5 * x + 0.1 * rng.standard_normal(x.shape)], axis=1)
    var = fit_var(x, orders=(2, 8, 32, 64), ridges=(1e-6,))
    assert var.order >= 32
    tried = {entry["order"]: entry["nll"] for entry in var.selection["tried"]}
    assert tried[var.order] < tried[2]
