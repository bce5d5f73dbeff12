"""Signal comparisons and baselines behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from ephys_eval.baselines import TokenStatistics
from ephys_eval.metrics import correlation_distance, divergence_curve, psd_log_distance


def ar_process(n=8, c=4, t=2000, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, c, t))
    x = np.zeros_like(noise)
    for i in range(1, t):
        x[..., i] = 0.95 * x[..., i - 1] + noise[..., i]
    return x


def test_identical_signals_score_zero():
    x = ar_process()
    assert psd_log_distance(x, x, 100.0) == pytest.approx(0.0)
    assert correlation_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(divergence_curve(x, x), 0.0)


def test_white_noise_is_far_from_a_red_process_in_spectrum():
    red = ar_process()
    same_process = ar_process(seed=1)
    white = np.random.default_rng(2).standard_normal(red.shape) * red.std()
    assert psd_log_distance(same_process, red, 100.0) < 0.2
    assert psd_log_distance(white, red, 100.0) > 0.5
    assert psd_log_distance(np.zeros_like(red), red, 100.0) > psd_log_distance(white, red, 100.0)


def test_independent_draws_diverge_to_two():
    a, b = ar_process(seed=3), ar_process(seed=4)
    assert divergence_curve(a, b).mean() == pytest.approx(2.0, rel=0.2)


def test_correlation_distance_sees_spatial_structure():
    rng = np.random.default_rng(0)
    source = rng.standard_normal((4, 1, 1000))
    correlated = np.concatenate([source, source + 0.1 * rng.standard_normal((4, 1, 1000))], 1)
    independent = rng.standard_normal((4, 2, 1000))
    assert correlation_distance(independent, correlated) > 0.5


def test_baseline_scores():
    stats = TokenStatistics(vocab_size=4, n_channels=1)
    tokens = np.array([[[0, 0, 0, 1, 1, 1, 2, 2]]])
    stats.update(tokens)
    assert stats.repeat_probability == pytest.approx(5 / 7)
    x, y = tokens[..., :-1], tokens[..., 1:]
    ce, acc = stats.persistence_scores(x, y)
    assert acc == pytest.approx(5 / 7)
    p, q = 5 / 7, (2 / 7) / 3
    assert ce == pytest.approx(-(5 * np.log(p) + 2 * np.log(q)) / 7)
    freq_ce, _ = stats.frequency_scores(x, y)
    assert freq_ce > 0
    sampled = stats.sample((2, 1, 1000), np.random.default_rng(0))
    assert (np.bincount(sampled.ravel(), minlength=4)[3] / 2000) < 0.2  # rare token stays rare
