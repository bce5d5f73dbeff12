"""Judging rollouts against real data: every metric, calibrated by a real-versus-real null,
with bootstrap confidence intervals over the contexts.

Given the true continuations of N contexts (``real``), forecasters' continuations of the same
contexts, and *unrelated* real segments of the same split (``others``: other recordings or
times), :func:`score_rollouts` computes, for every forecaster and for ``others`` itself (the
null: what real data that is not the continuation scores), each of these with a 95 %
bootstrap interval over the N contexts (the continuation and the forecast are resampled
together):

``psd_log_distance``
    Mean absolute difference of log10 Welch spectra, 1 Hz up (decades; 0 = identical).
``band_power_divergence``
    Wasserstein-1 distance between the distributions of log10 band power (delta to gamma)
    over segments, per band and their mean (decades).
``aperiodic_exponent``
    The 1/f exponent of each channel's spectrum averaged over the segments, mean over
    channels (beside the real data's own). The fit runs from 2 Hz to 40 Hz, or to the real
    data's low-pass edge (:func:`~ephys_eval.metrics.fit_range`) when that comes first, for
    every forecaster alike.
``peak_alpha_frequency``
    The frequency of the alpha peak of each channel's averaged spectrum, mean over the
    channels that have one (Hz), on the same fit range.
``covariance_distance``, ``coherence_distance``
    Relative Frobenius distance of the channel covariance matrix and of the 1-30 Hz
    magnitude-squared coherence matrix (0 = identical).
``divergence``
    The normalised error curve over the horizon (:func:`~ephys_eval.metrics.divergence_curve`)
    and ``time_to_divergence``: the first horizon at which the forecaster's error reaches the
    lower bound of the null's (unrelated real data's) error: from then on the forecast is no
    better than real data from elsewhere.

Reading them: a forecaster generates realistic activity on a distribution metric when its
value lies within (or below) the null's interval; its forecast carries information about the
continuation as long as its divergence curve stays below the null's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_core.reporting import SummaryTable
from ephys_eval import metrics
from ephys_eval.stats import bootstrap, bootstrap_curve

__all__ = [
    "NULL",
    "ROLLOUT_COLUMNS",
    "rollout_steps",
    "rollout_table",
    "sampler_of",
    "score_rollouts",
]

#: the name the null (unrelated real segments) carries in the results
NULL = "real_other"

#: the rollout metrics shown in summary tables, with their column labels
ROLLOUT_COLUMNS = (
    ("psd_log_distance", "PSD log-dist."),
    ("band_power_divergence", "band-power div."),
    ("coherence_distance", "coherence dist."),
    ("covariance_distance", "covariance dist."),
)

logger = get_logger(__name__)


def rollout_steps(
    context_seconds: float, horizon_seconds: float, rate: float, longest: int, split: str, who: str
) -> tuple[int, int]:
    """``(context, horizon)`` steps at ``rate`` per second, shortened (with a warning) when the
    split's longest session cannot hold both.

    Raises
    ------
    ConfigError
        The split is too short for a rollout of two steps.
    """
    n_ctx = int(round(context_seconds * rate))
    n_hor = max(1, int(round(horizon_seconds * rate)))
    if n_ctx + n_hor > longest:  # short recordings: shorten the rollout to fit
        n_ctx = min(n_ctx, max(longest // 2, 1))
        n_hor = longest - n_ctx
        if n_hor < 2:
            raise ConfigError(f"{who}: the {split} split is too short to roll out")
        logger.warning(
            "the %s split's sessions are short: rolling out %.2f s after %.2f s contexts",
            split,
            n_hor / rate,
            n_ctx / rate,
        )
    return n_ctx, n_hor


def sampler_of(config: Any) -> Any:
    """The :class:`ephys_models.generation.Sampler` an evaluator's rollout options describe."""
    from ephys_models.generation import Sampler

    return Sampler(
        strategy=config.strategy,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        seed=config.seed,
        innovations=config.innovations,
    )


def rollout_table(rollout: Mapping[str, Any], title: str) -> SummaryTable:
    """Every forecaster's rollout metrics and divergence time, then the null's."""
    from ephys_eval.stats import format_estimate

    ttd = rollout["divergence"]["time_to_divergence"]
    table = rollout["metrics"]
    return SummaryTable(
        title,
        ["forecaster", *(label for _, label in ROLLOUT_COLUMNS), "diverges after (s)"],
        [
            (
                name,
                *(
                    format_estimate(
                        table[key][name]["mean"]
                        if key == "band_power_divergence"
                        else table[key][name],
                        2,
                    )
                    for key, _ in ROLLOUT_COLUMNS
                ),
                f"{ttd[name]:.3g}" if name in ttd else "-",
            )
            for name in [*ttd, NULL]
        ],
    )


def _mean_feature(features: np.ndarray) -> float:
    return float(np.nanmean(features)) if np.isfinite(features).any() else float("nan")


def _paired(fn: Any, n_boot: int, seed: int) -> Any:
    """A function ``(gen, real) -> Estimate dict`` bootstrapping ``fn`` over paired segments."""

    def estimate(generated: np.ndarray, real: np.ndarray) -> dict[str, Any]:
        result = bootstrap(fn, generated, real, n_boot=n_boot, seed=seed)
        if isinstance(result, dict):
            return {k: v.to_dict() for k, v in result.items()}
        return result.to_dict()

    return estimate


def score_rollouts(
    forecasts: Mapping[str, np.ndarray],
    real: np.ndarray,
    others: np.ndarray,
    sfreq: float,
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Every generative metric of every forecaster, and of the null, with intervals.

    Parameters
    ----------
    forecasts
        Forecaster name -> ``(N, C, H)`` continuations of the N contexts, in signal units.
    real
        ``(N, C, H)`` the true continuations.
    others
        ``(N, C, H)`` unrelated real segments of the same split (the null).
    sfreq
        Sampling frequency in Hz.
    n_boot, seed
        Bootstrap resamples and their seed.

    Returns
    -------
    dict
        ``metrics``: metric -> forecaster (and :data:`NULL`) -> ``{value, low, high, n,
        level}`` (per band for ``band_power_divergence``); ``real``: the real continuations'
        own aperiodic exponent and alpha peak and their ``fit_range_hz``; ``divergence``:
        ``horizon_seconds``, each forecaster's curve, the null's curve with its bounds, and
        ``time_to_divergence`` (seconds) per forecaster.
    """
    everyone = {**forecasts, NULL: others}
    bands = metrics.bands_for(sfreq)
    floor = 10.0 ** (metrics.band_powers(real, sfreq, bands).max() - 6)
    real_powers = metrics.band_powers(real, sfreq, bands, floor=floor)
    fmin, fmax = metrics.fit_range(real, sfreq)

    def exponent(x: np.ndarray) -> float:
        return _mean_feature(
            metrics.aperiodic_exponent(x, sfreq, fmin=fmin, fmax=fmax, average=True)
        )

    def alpha_peaks(x: np.ndarray) -> np.ndarray:
        return metrics.peak_alpha_frequency(x, sfreq, fmin=fmin, fmax=fmax, average=True)

    def alpha(x: np.ndarray) -> float:
        return _mean_feature(alpha_peaks(x))

    def alpha_channels(x: np.ndarray) -> float:
        return float(np.isfinite(alpha_peaks(x)).mean())

    def band_divergence(gen_powers: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        distances = metrics.feature_divergence(gen_powers, reference)
        out = {name: float(d) for name, d in zip(bands, distances, strict=True)}
        out["mean"] = float(distances.mean())
        return out

    table: dict[str, dict[str, Any]] = {
        name: {}
        for name in (
            "psd_log_distance",
            "band_power_divergence",
            "aperiodic_exponent",
            "peak_alpha_frequency",
            "alpha_channels",
            "covariance_distance",
            "coherence_distance",
        )
    }
    for name, generated in everyone.items():
        table["psd_log_distance"][name] = _paired(
            lambda g, r: metrics.psd_log_distance(g, r, sfreq), n_boot, seed
        )(generated, real)
        powers = metrics.band_powers(generated, sfreq, bands, floor=floor)
        table["band_power_divergence"][name] = _paired(band_divergence, n_boot, seed)(
            powers, np.maximum(real_powers, np.log10(floor))
        )
        table["aperiodic_exponent"][name] = bootstrap(
            exponent, generated, n_boot=n_boot, seed=seed
        ).to_dict()
        table["peak_alpha_frequency"][name] = bootstrap(
            alpha, generated, n_boot=n_boot, seed=seed
        ).to_dict()
        table["alpha_channels"][name] = alpha_channels(generated)
        table["covariance_distance"][name] = _paired(metrics.covariance_distance, n_boot, seed)(
            generated, real
        )
        table["coherence_distance"][name] = _paired(
            lambda g, r: metrics.coherence_distance(g, r, sfreq), n_boot, seed
        )(generated, real)
    horizon = np.arange(1, real.shape[-1] + 1) / sfreq
    smooth = max(1, int(sfreq // 20))
    null = bootstrap_curve(
        lambda o, r: metrics.divergence_null(r, o, smooth=smooth),
        others,
        real,
        n_boot=n_boot,
        seed=seed,
    )
    curves, ttd = {}, {}
    for name, generated in forecasts.items():
        curve = metrics.divergence_curve(generated, real, smooth=smooth)
        curves[name] = curve.tolist()
        ttd[name] = metrics.time_to_divergence(curve, null.value, horizon, lower=null.low)
    return {
        "metrics": table,
        "real": {
            "aperiodic_exponent": bootstrap(exponent, real, n_boot=n_boot, seed=seed).to_dict(),
            "peak_alpha_frequency": bootstrap(alpha, real, n_boot=n_boot, seed=seed).to_dict(),
            "alpha_channels": alpha_channels(real),
            "fit_range_hz": [fmin, fmax],
        },
        "divergence": {
            "horizon_seconds": horizon.tolist(),
            "curves": curves,
            "null": null.to_dict(),
            "time_to_divergence": ttd,
        },
    }
