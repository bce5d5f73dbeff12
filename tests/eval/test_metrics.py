"""Signal comparisons and their statistics behave as documented, on known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.signal import coherence, detrend, filtfilt, firwin
from scipy.stats import wasserstein_distance

from ephys_eval.metrics import (
    BANDS,
    aperiodic_exponent,
    band_power_divergence,
    band_powers,
    bands_for,
    coherence_distance,
    coherence_matrix,
    correlation_distance,
    covariance_distance,
    divergence_curve,
    divergence_null,
    feature_divergence,
    fit_range,
    lowpass_edge,
    mean_psd,
    peak_alpha_frequency,
    psd_log_distance,
    segment_psd,
    time_to_divergence,
)
from ephys_eval.stats import Estimate, bootstrap, bootstrap_curve, real_null

SFREQ = 100.0


def ar_process(n=8, c=4, t=2000, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, c, t))
    x = np.zeros_like(noise)
    for i in range(1, t):
        x[..., i] = 0.95 * x[..., i - 1] + noise[..., i]
    return x


def pink_noise(n, c, t, rng, exponent=1.0):
    """Gaussian noise with a ``1/f^exponent`` spectrum and unit variance."""
    freqs = np.fft.rfftfreq(t)
    freqs[0] = freqs[1]
    spectrum = np.fft.rfft(rng.standard_normal((n, c, t))) / freqs ** (exponent / 2)
    x = np.fft.irfft(spectrum, n=t)
    return x / x.std()


def alpha_rhythm(n, c, t, rng, freq=10.0, amplitude=0.8, sfreq=SFREQ, mixing=None):
    """A ``freq`` Hz sinusoid of random phase on 1/f noise, optionally mixed across channels."""
    times = np.arange(t) / sfreq
    phases = rng.uniform(0, 2 * np.pi, (n, c, 1))
    x = pink_noise(n, c, t, rng) + amplitude * np.sin(2 * np.pi * freq * times + phases)
    return x if mixing is None else np.einsum("dc,nct->ndt", mixing, x)


AR2 = (2 * 0.95 * np.cos(2 * np.pi * 10 / SFREQ), -(0.95**2))  # a 10 Hz resonance


def ar2_rollouts(n=64, c=4, context=200, horizon=200, seed=0):
    """A real AR(2) process and three forecasts of its continuation from the same contexts.

    ``sampled``: the true recursion driven by fresh noise (a rollout of the true model);
    ``point``: the true recursion without noise (the conditional mean, the best point
    forecast); ``white``: white noise of the continuation's variance.
    """
    a1, a2 = AR2
    rng = np.random.default_rng(seed)
    steps = 500 + context + horizon  # 500 steps of burn-in
    noise = rng.standard_normal((n, c, steps))
    real = np.zeros((n, c, steps))
    for i in range(2, steps):
        real[..., i] = a1 * real[..., i - 1] + a2 * real[..., i - 2] + noise[..., i]
    sampled, point = real.copy(), real.copy()
    fresh = rng.standard_normal((n, c, steps))
    start = steps - horizon
    for i in range(start, steps):
        sampled[..., i] = a1 * sampled[..., i - 1] + a2 * sampled[..., i - 2] + fresh[..., i]
        point[..., i] = a1 * point[..., i - 1] + a2 * point[..., i - 2]
    continuation = real[..., start:]
    white = rng.standard_normal(continuation.shape) * continuation.std()
    return continuation, {
        "sampled": sampled[..., start:],
        "point": point[..., start:],
        "white": white,
    }


# -- identical inputs ----------------------------------------------------------------------------


def test_identical_signals_score_zero():
    x = ar_process()
    assert psd_log_distance(x, x, SFREQ) == pytest.approx(0.0)
    assert correlation_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert covariance_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert coherence_distance(x, x, SFREQ) == pytest.approx(0.0, abs=1e-12)
    assert all(
        v == pytest.approx(0.0, abs=1e-12) for v in band_power_divergence(x, x, SFREQ).values()
    )
    assert np.allclose(divergence_curve(x, x), 0.0)
    assert np.allclose(divergence_null(x, x), 0.0)


# -- spectra and bands ---------------------------------------------------------------------------


def test_bands_for_keeps_bands_below_nyquist():
    assert bands_for(1000.0) == BANDS
    low_rate = bands_for(50.0)
    assert list(low_rate) == ["delta", "theta", "alpha", "beta"]
    assert low_rate["beta"] == (13.0, 25.0)


def test_segment_psd_has_one_hertz_bins_and_mean_psd_averages_it():
    x = ar_process(n=3, c=2, t=500)
    freqs, psd = segment_psd(x, SFREQ)
    assert psd.shape == (3, 2, len(freqs))
    assert freqs[1] - freqs[0] == pytest.approx(1.0)
    _, mean = mean_psd(x, SFREQ)
    assert np.allclose(mean, psd.mean(axis=(0, 1)))
    short_freqs, _ = segment_psd(x[..., :50], SFREQ)  # shorter than a second: T-sample windows
    assert short_freqs[1] - short_freqs[0] == pytest.approx(2.0)


def test_band_powers_of_white_noise_and_a_sinusoid():
    rng = np.random.default_rng(0)
    white = rng.standard_normal((16, 2, 2000))  # unit variance: one-sided PSD 2 / sfreq
    powers = 10 ** band_powers(white, SFREQ)
    widths = np.array([high - low for low, high in BANDS.values()])
    # (Welch's per-window demeaning takes a few percent off the 1 Hz bin, hence 8 %)
    assert np.allclose(powers.mean(axis=(0, 1)), 2 / SFREQ * widths, rtol=0.08)
    relative = 10 ** band_powers(white, SFREQ, relative=True)  # the bands tile 1-45 Hz
    assert np.allclose(relative.sum(axis=-1), 1.0)
    assert np.allclose(relative.mean(axis=(0, 1)), widths / 44, rtol=0.08)

    times = np.arange(1000) / SFREQ
    sine = np.broadcast_to(3.0 * np.sin(2 * np.pi * 10 * times), (1, 1, 1000))
    alpha = list(BANDS).index("alpha")
    assert band_powers(sine, SFREQ)[0, 0, alpha] == pytest.approx(np.log10(4.5), abs=0.02)


def test_feature_divergence_is_the_wasserstein_distance():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 3, 2)), rng.gamma(2.0, size=(12, 3, 2))
    expected = [
        np.mean([wasserstein_distance(a[:, c, k], b[:, c, k]) for c in range(3)]) for k in range(2)
    ]
    assert np.allclose(feature_divergence(a, b), expected)
    assert np.allclose(feature_divergence(a + 0.5, a), 0.5)


def test_white_noise_is_far_from_a_red_process_in_spectrum():
    red = ar_process()
    same_process = ar_process(seed=1)
    white = np.random.default_rng(2).standard_normal(red.shape) * red.std()
    assert psd_log_distance(same_process, red, 100.0) < 0.2
    assert psd_log_distance(white, red, 100.0) > 0.5
    assert psd_log_distance(np.zeros_like(red), red, 100.0) > psd_log_distance(white, red, 100.0)


def test_white_noise_is_far_from_an_alpha_rhythm():
    rng = np.random.default_rng(0)
    real, same = alpha_rhythm(32, 4, 400, rng), alpha_rhythm(32, 4, 400, rng)
    white = rng.standard_normal(real.shape) * real.std()
    far, near = band_power_divergence(white, real, SFREQ), band_power_divergence(same, real, SFREQ)
    assert far["alpha"] > 0.3 and near["alpha"] < 0.05
    assert far["mean"] > 5 * near["mean"]
    assert psd_log_distance(white, real, SFREQ) > 0.4
    assert psd_log_distance(same, real, SFREQ) < 0.05


def test_a_constant_forecast_has_a_finite_large_band_power_divergence():
    real = ar_process(n=8, c=2, t=400)
    flat = band_power_divergence(np.zeros_like(real), real, SFREQ)
    white = band_power_divergence(np.random.default_rng(0).standard_normal(real.shape), real, SFREQ)
    assert np.isfinite(flat["mean"]) and flat["mean"] > white["mean"]


def test_a_constant_segment_has_no_spectrum_to_fit_or_search():
    # Welch's detrending leaves rounding noise of a constant; persistence rollouts are constant
    x = np.full((4, 2, 400), 0.3)
    _, psd = segment_psd(x, SFREQ)
    assert np.all(psd == 0.0)
    assert np.all(np.isnan(aperiodic_exponent(x, SFREQ, average=True)))
    assert np.all(np.isnan(peak_alpha_frequency(x, SFREQ, average=True)))


def test_band_power_divergence_cheap_path_matches():
    rng = np.random.default_rng(1)
    gen, real = ar_process(n=6, c=3, t=300, seed=2), alpha_rhythm(6, 3, 300, rng)
    floor = 10.0 ** (band_powers(real, SFREQ).max() - 6)
    p_gen, p_real = (band_powers(x, SFREQ, floor=floor) for x in (gen, real))
    assert feature_divergence(p_gen, p_real).mean() == pytest.approx(
        band_power_divergence(gen, real, SFREQ)["mean"]
    )


# -- aperiodic exponent and alpha peak ------------------------------------------------------------


def test_aperiodic_exponent_of_white_pink_and_brown_noise():
    rng = np.random.default_rng(0)
    white = rng.standard_normal((16, 4, 1000))
    brown = detrend(np.cumsum(rng.standard_normal((16, 4, 1000)), axis=-1), axis=-1)
    pink = pink_noise(16, 4, 1000, rng)
    assert np.mean(aperiodic_exponent(white, SFREQ)) == pytest.approx(0.0, abs=0.1)
    assert np.mean(aperiodic_exponent(pink, SFREQ)) == pytest.approx(1.0, abs=0.2)
    assert np.mean(aperiodic_exponent(brown, SFREQ)) == pytest.approx(2.0, abs=0.3)
    assert np.all(np.isnan(aperiodic_exponent(np.zeros((2, 1, 500)), SFREQ)))


@pytest.mark.parametrize("freq", [10.0, 10.4])
def test_peak_alpha_frequency_finds_the_rhythm(freq):
    rng = np.random.default_rng(0)
    x = alpha_rhythm(16, 4, 400, rng, freq=freq)
    paf = peak_alpha_frequency(x, SFREQ)
    assert paf.shape == (16, 4)
    assert np.isfinite(paf).mean() > 0.9
    assert np.nanmedian(paf) == pytest.approx(freq, abs=0.3)


def test_peak_alpha_frequency_is_nan_for_white_and_pink_noise():
    rng = np.random.default_rng(0)
    for noise in (rng.standard_normal((32, 4, 400)), pink_noise(32, 4, 400, rng)):
        assert np.isnan(peak_alpha_frequency(noise, SFREQ)).mean() > 0.9
    assert np.isfinite(peak_alpha_frequency(noise, SFREQ, min_z=0.0)).mean() > 0.3  # the z-test


def lowpassed(x, cutoff=30.0):
    """``x`` through a steep zero-phase FIR low-pass at ``cutoff`` Hz (like the pipeline's)."""
    return filtfilt(firwin(101, cutoff, fs=SFREQ), [1.0], x, axis=-1)


def test_lowpass_edge_finds_the_filter_and_nothing_else():
    rng = np.random.default_rng(0)
    pink = pink_noise(16, 4, 400, rng)
    edge = lowpass_edge(lowpassed(pink), SFREQ)
    assert edge is not None and 28.0 <= edge <= 36.0
    assert lowpass_edge(pink, SFREQ) is None  # a power law has no cliff
    assert lowpass_edge(rng.standard_normal((16, 4, 400)), SFREQ) is None
    # the steep flank of a strong beta peak is not an edge: the spectrum does not sink after it
    beta = alpha_rhythm(16, 4, 400, rng, freq=18.0, amplitude=3.0)
    assert lowpass_edge(beta, SFREQ) is None
    assert fit_range(lowpassed(pink), SFREQ) == (2.0, edge)
    assert fit_range(pink, SFREQ) == (2.0, 40.0)


def test_the_fit_range_keeps_the_exponent_of_low_passed_data():
    pink = lowpassed(pink_noise(16, 4, 400, np.random.default_rng(1)))
    low, high = fit_range(pink, SFREQ)
    across_the_cliff = np.mean(aperiodic_exponent(pink, SFREQ))
    below_it = np.mean(aperiodic_exponent(pink, SFREQ, fmin=low, fmax=high))
    assert below_it == pytest.approx(1.0, abs=0.25)
    assert across_the_cliff > 2.0  # the fit across the filter's cliff is meaningless


def test_averaged_spectra_find_a_weak_alpha_rhythm_that_single_segments_miss():
    rng = np.random.default_rng(0)
    x = alpha_rhythm(32, 4, 200, rng, amplitude=0.25)  # 2 s segments, a weak rhythm
    per_segment = peak_alpha_frequency(x, SFREQ)
    assert np.isfinite(per_segment).mean() < 0.5
    averaged = peak_alpha_frequency(x, SFREQ, average=True)
    assert averaged.shape == (4,) and np.all(np.isfinite(averaged))
    assert np.mean(averaged) == pytest.approx(10.0, abs=0.3)
    noise = pink_noise(32, 4, 200, rng)
    assert np.isnan(peak_alpha_frequency(noise, SFREQ, average=True)).mean() >= 0.75
    assert aperiodic_exponent(noise, SFREQ, average=True).shape == (4,)
    assert np.mean(aperiodic_exponent(noise, SFREQ, average=True)) == pytest.approx(1.0, abs=0.2)


# -- channel structure ---------------------------------------------------------------------------


def test_covariance_distance_sees_power_that_correlation_ignores():
    x = ar_process(n=4, c=3, t=500)
    assert covariance_distance(2 * x, x) == pytest.approx(3.0)  # ||4 C - C|| / ||C||
    assert correlation_distance(2 * x, x) == pytest.approx(0.0, abs=1e-12)


def test_correlation_distance_sees_spatial_structure():
    rng = np.random.default_rng(0)
    source = rng.standard_normal((4, 1, 1000))
    correlated = np.concatenate([source, source + 0.1 * rng.standard_normal((4, 1, 1000))], 1)
    independent = rng.standard_normal((4, 2, 1000))
    assert correlation_distance(independent, correlated) > 0.5


def test_coherence_of_coherent_and_independent_channels():
    rng = np.random.default_rng(0)
    source = ar_process(n=16, c=1, t=1000, seed=1)
    coherent = np.concatenate([source, 0.5 * np.roll(source, 3, axis=-1)], axis=1)
    independent = ar_process(n=16, c=2, t=1000, seed=2)
    other_coherent = np.concatenate([independent[:, :1], -independent[:, :1]], axis=1)
    assert coherence_matrix(coherent, SFREQ)[0, 1] > 0.95
    assert coherence_matrix(independent, SFREQ)[0, 1] < 0.05
    assert np.allclose(np.diag(coherence_matrix(independent, SFREQ)), 1.0)
    far = coherence_distance(coherent, independent, SFREQ)
    assert far > 0.5
    assert coherence_distance(ar_process(16, 2, 1000, seed=3), independent, SFREQ) < 0.1 * far
    assert coherence_distance(other_coherent, coherent, SFREQ) < 0.1 * far
    one = rng.standard_normal((1, 2, 2000))
    one[:, 1] += one[:, 0]
    freqs, expected = coherence(one[0, 0], one[0, 1], fs=SFREQ, nperseg=100)
    band = (freqs >= 1) & (freqs <= 30)
    assert coherence_matrix(one, SFREQ)[0, 1] == pytest.approx(expected[band].mean())


# -- divergence over the horizon -------------------------------------------------------------------


def test_independent_draws_diverge_to_two():
    a, b = ar_process(seed=3), ar_process(seed=4)
    assert divergence_curve(a, b).mean() == pytest.approx(2.0, rel=0.2)
    assert divergence_null(a).mean() == pytest.approx(2.0, rel=0.2)


def test_time_to_divergence_semantics():
    curve = np.linspace(0.0, 3.0, 31)  # steps of 0.1
    null = np.full(31, 2.0)
    times = np.arange(1, 32) / 10
    assert time_to_divergence(curve, null, times) == pytest.approx(times[20])
    assert time_to_divergence(curve, null, times, lower=null - 0.5) == pytest.approx(times[15])
    assert time_to_divergence(curve, null, 3.1) == pytest.approx(times[20])  # total horizon
    assert time_to_divergence(curve * 0.1, null, times) == pytest.approx(times[-1])
    assert time_to_divergence(curve * 0.1, null, times, if_never="inf") == math.inf


def test_a_true_model_diverges_later_than_white_noise():
    continuation, forecasts = ar2_rollouts()
    others = np.roll(continuation, len(continuation) // 2, axis=0)
    smooth = 5
    null = bootstrap_curve(lambda c, o: divergence_null(c, o, smooth=smooth), continuation, others)
    times = np.arange(1, continuation.shape[-1] + 1) / SFREQ
    curves = {k: divergence_curve(x, continuation, smooth=smooth) for k, x in forecasts.items()}
    when = {
        k: time_to_divergence(c, null.value, times, lower=null.low, if_never="inf")
        for k, c in curves.items()
    }
    # a rollout of the true model starts well below the null and reaches it within the horizon
    assert np.all(curves["sampled"][:3] < 0.5 * null.low[:3])
    assert 0.1 < when["sampled"] < 1.0
    assert np.median(curves["sampled"][100:]) == pytest.approx(2.0, abs=0.2)
    # white noise of the same variance is as far off as unrelated data from the first step
    assert when["white"] <= 0.05 < when["sampled"]
    # the best point forecast (no noise after the context) levels off at 1 and never diverges
    assert np.median(curves["point"][100:]) == pytest.approx(1.0, abs=0.15)
    assert when["point"] == math.inf
    assert time_to_divergence(curves["point"], null.value, times, null.low) == times[-1]


# -- bootstrap and null ----------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_value_and_shrinks_with_more_segments():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((256, 3))

    def mean(x):
        return float(x.mean())

    small, large = bootstrap(mean, data[:16]), bootstrap(mean, data)
    for est in (small, large):
        assert est.low <= est.value <= est.high
    assert small.n == 16 and large.n == 256
    assert (large.high - large.low) < 0.4 * (small.high - small.low)  # ~ sqrt(16 / 256)
    real = alpha_rhythm(16, 4, 300, rng)
    white = rng.standard_normal(real.shape) * real.std()
    per_band = bootstrap(lambda g, r: band_power_divergence(g, r, SFREQ), white, real)
    assert set(per_band) == {*BANDS, "mean"}
    assert all(isinstance(e, Estimate) and e.low <= e.value <= e.high for e in per_band.values())


def test_bootstrap_is_deterministic_with_the_seed_and_json_ready():
    x, y = ar_process(n=12, c=2, t=200, seed=1), ar_process(n=12, c=2, t=200, seed=2)
    first, again = bootstrap(covariance_distance, x, y), bootstrap(covariance_distance, x, y)
    assert first == again
    assert bootstrap(covariance_distance, x, y, seed=1) != first
    assert json.loads(json.dumps(first.to_dict()))["n"] == 12
    assert Estimate(math.nan, math.nan, math.nan, 3).to_dict()["value"] is None
    curve = bootstrap_curve(divergence_curve, x, y, n_boot=20)
    assert curve.value.shape == curve.low.shape == (200,)
    assert np.all(curve.low <= curve.high)
    assert len(json.loads(json.dumps(curve.to_dict()))["low"]) == 200
    values = np.arange(10.0)
    partial = bootstrap(lambda v: math.nan if v[0] < 3 else float(v.mean()), values)
    assert math.isnan(partial.value) and partial.low <= partial.high  # NaN resamples left out
    assert math.isnan(bootstrap(lambda v: math.nan, values).high)
    with pytest.raises(ValueError, match="first axes"):
        bootstrap(covariance_distance, x, y[:5])


def test_real_null_brackets_the_same_process_and_excludes_white_noise():
    rng = np.random.default_rng(0)
    mixing = np.eye(4) + 0.6 * rng.standard_normal((4, 4))  # channels share sources
    real = alpha_rhythm(32, 4, 400, rng, mixing=mixing)
    same = alpha_rhythm(32, 4, 400, rng, mixing=mixing)  # "a forecaster": the same process
    white = rng.standard_normal(real.shape) * real.std()
    half = len(real) // 2

    def mean_band_power(a, b, sfreq):
        return band_power_divergence(a, b, sfreq)["mean"]

    metrics = {
        "band_power": (mean_band_power, {"sfreq": SFREQ}),
        "psd": (psd_log_distance, {"sfreq": SFREQ}),
        "coherence": (coherence_distance, {"sfreq": SFREQ}),
        "covariance": (covariance_distance, {}),
    }
    for name, (metric, kwargs) in metrics.items():
        null = real_null(metric, real, level=0.99, **kwargs)  # 99 %: one draw must fall inside
        assert null.n == half
        assert 0 <= null.low <= null.value <= null.high, name
        like_for_like = metric(same[:half], real[half:], **kwargs)
        assert null.contains(like_for_like), (name, null, like_for_like)
        assert metric(white, real, **kwargs) > 2 * null.high, name
    assert real_null(mean_band_power, real, sfreq=SFREQ).high < 0.1  # decades: near 0
    per_band = real_null(band_power_divergence, real, sfreq=SFREQ, n_boot=20)
    assert set(per_band) == {*BANDS, "mean"}


def test_a_biased_two_sample_statistic_keeps_its_value_inside_its_interval():
    # resampling with replacement inflates a distance between two samples of one process, so
    # the resampled values lie above the value; the interval must still hold the value
    real = ar_process(n=16, c=3, t=300, seed=3)
    other = ar_process(n=16, c=3, t=300, seed=4)
    raw = [
        band_power_divergence(real[i], other[i], SFREQ)["mean"]
        for i in np.random.default_rng(0).integers(0, 16, size=(50, 16))
    ]
    value = band_power_divergence(real, other, SFREQ)["mean"]
    assert np.quantile(raw, 0.025) > value  # the bias the centring corrects for
    est = bootstrap(lambda g, r: band_power_divergence(g, r, SFREQ), real, other)["mean"]
    assert est.low <= est.value <= est.high
    assert est.value == pytest.approx(value)
