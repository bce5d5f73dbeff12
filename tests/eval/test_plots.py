"""Every figure of an evaluation is written as a PNG, with and without its optional layers."""

from __future__ import annotations

import numpy as np
import pytest

from ephys_eval import plots
from ephys_eval.metrics import BANDS, divergence_null
from ephys_eval.stats import bootstrap_curve

SFREQ = 100.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_SIGNATURE)


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(0)
    real = np.cumsum(rng.standard_normal((8, 3, 200)), axis=-1) * 0.1
    return {
        "real": real,
        "model": real + 0.5 * rng.standard_normal(real.shape),
        "white_noise": rng.standard_normal(real.shape),
        "repeat_last": np.repeat(real[..., :1], real.shape[-1], axis=-1),  # no power at all
    }


def test_psd_plot_with_and_without_bands(signals, tmp_path):
    assert is_png(plots.plot_psd(signals, SFREQ, tmp_path / "psd.png"))
    assert is_png(plots.plot_psd(signals, SFREQ, tmp_path / "bands.png", bands=BANDS))


def test_divergence_plot_with_a_null_curve_and_band(signals, tmp_path):
    real = signals["real"]
    generated = {k: v for k, v in signals.items() if k != "real"}
    others = np.roll(real, len(real) // 2, axis=0)
    null = bootstrap_curve(lambda c, o: divergence_null(c, o, smooth=5), real, others, n_boot=20)
    assert is_png(plots.plot_divergence(real, generated, SFREQ, tmp_path / "plain.png"))
    assert is_png(
        plots.plot_divergence(
            real,
            generated,
            SFREQ,
            tmp_path / "arrays.png",
            null=null.value,
            null_band=(null.low, null.high),
        )
    )
    assert is_png(plots.plot_divergence(real, generated, SFREQ, tmp_path / "est.png", null=null))


@pytest.mark.parametrize("relative", [False, True])
def test_band_power_plot(signals, tmp_path, relative):
    path = plots.plot_band_powers(signals, SFREQ, tmp_path / "bp.png", relative=relative)
    assert is_png(path)
    narrow = {"alpha": BANDS["alpha"], "beta": BANDS["beta"], "above_nyquist": (60.0, 80.0)}
    assert is_png(plots.plot_band_powers(signals, SFREQ, tmp_path / "two.png", bands=narrow))


def test_existing_plots_still_write(signals, tmp_path):
    assert is_png(plots.plot_covariance(signals, tmp_path / "cov.png"))
    context = signals["real"][0]
    examples = {"real": signals["real"][0], "model": signals["model"][0]}
    assert is_png(plots.plot_examples(context, examples, SFREQ, tmp_path / "ex.png"))
