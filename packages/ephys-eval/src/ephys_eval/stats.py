"""Confidence intervals over segments, and the real-versus-real null of a metric.

A metric of generated signals means little alone: a band-power distance of 0.1 decades may be
excellent or poor depending on how much two samples of *real* data differ. Two tools put every
number in context:

- :func:`bootstrap` resamples the segments (the first axis of every array, with the same
  indices, so a forecast stays paired with its real continuation) and gives a percentile
  confidence interval of the metric, centred on its value: :class:`Estimate`.
  :func:`bootstrap_curve` does the same for a curve over the horizon: :class:`CurveEstimate`.
- :func:`real_null` evaluates a two-sample metric between two random halves of the real
  segments: the value the metric gives for data that *is* the real process.

Reading: a forecaster is as good as real data on a metric when its value is no larger than the
null's ``high`` (it lies within, or below, the null interval); above ``high`` it differs from
the real data by more than real data differs from itself.

The metrics of :mod:`ephys_eval.metrics` that are computed per segment (``segment_psd``,
``band_powers``, ``aperiodic_exponent``, ``peak_alpha_frequency``) can be computed once and the
bootstrap run on their rows, which resamples identically and costs nothing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CurveEstimate",
    "Estimate",
    "bootstrap",
    "bootstrap_curve",
    "format_estimate",
    "real_null",
]


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class Estimate:
    """A metric's value with a confidence interval.

    Attributes
    ----------
    value : float
        The metric on the original data (for :func:`real_null`, the median over splits).
    low, high : float
        Percentile interval at ``level`` (NaN when no resample gave a finite value).
    n : int
        Segments the metric was computed on (for :func:`real_null`, the segments in each half).
    level : float
        Coverage of the interval, e.g. 0.95.
    """

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def contains(self, x: float) -> bool:
        """Whether ``low <= x <= high``."""
        return bool(self.low <= x <= self.high)

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-ready fields; non-finite numbers become ``None``."""
        return {
            "value": _json_float(self.value),
            "low": _json_float(self.low),
            "high": _json_float(self.high),
            "n": int(self.n),
            "level": float(self.level),
        }


@dataclass(frozen=True, eq=False)
class CurveEstimate:
    """A curve (e.g. a divergence curve over the horizon) with a pointwise interval.

    Attributes
    ----------
    value, low, high : ndarray, shape (H,)
        The curve on the original data and its pointwise percentile interval at ``level``.
    n : int
        Segments the curve was computed on.
    level : float
        Coverage of the interval.
    """

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (lists); non-finite numbers become ``None``."""
        out: dict[str, Any] = {
            key: [_json_float(v) for v in np.asarray(getattr(self, key), dtype=float)]
            for key in ("value", "low", "high")
        }
        out.update(n=int(self.n), level=float(self.level))
        return out


def format_estimate(
    estimate: Mapping[str, Any] | None, digits: int = 3, signed: bool = False
) -> str:
    """``"4.870 [4.840, 4.900]"`` from an estimate's dict (:meth:`Estimate.to_dict`); only the
    value when it has no interval, ``-`` when missing; ``signed`` prints ``+`` on positives."""
    if not estimate or estimate.get("value") is None:
        return "-"
    spec = f"{'+' if signed else ''}.{digits}f"
    text = format(estimate["value"], spec)
    if estimate.get("low") is not None and estimate.get("high") is not None:
        text += f" [{format(estimate['low'], spec)}, {format(estimate['high'], spec)}]"
    return text


def _interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the first axis, ignoring non-finite resamples."""
    samples = np.asarray(samples, dtype=float)
    finite = np.isfinite(samples)
    alpha = (1 - level) / 2
    if finite.all():
        return np.quantile(samples, [alpha, 1 - alpha], axis=0)
    out = np.full((2, *samples.shape[1:]), np.nan)
    some = finite.any(axis=0)
    if some.any():
        out[:, some] = np.nanquantile(
            np.where(finite, samples, np.nan)[:, some], [alpha, 1 - alpha], axis=0
        )
    return out


def _centred(
    samples: np.ndarray, value: np.ndarray | float, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of ``samples`` moved so that their median sits on ``value``.

    Resampling with replacement repeats segments, which biases two-sample statistics (a
    distance between distributions, a coherence): the resampled values can then lie wholly
    above or below the value on the original data, and a plain percentile interval would not
    contain the number it qualifies. The spread of the resamples around their median still
    measures the sampling variability, so that spread is placed around the value. For a mean
    over segments the median of the resamples is the value (up to resampling noise) and the
    interval is the plain percentile interval; so it is where the value is not finite.
    """
    samples = np.asarray(samples, dtype=float)
    low, high = _interval(samples, level)
    finite = np.isfinite(samples)
    with warnings.catch_warnings():  # all-NaN columns: their interval is NaN already
        warnings.simplefilter("ignore", RuntimeWarning)
        middle = np.nanmedian(np.where(finite, samples, np.nan), axis=0)
    # where the value itself is undefined there is nothing to centre on: plain percentiles
    shift = np.nan_to_num(np.asarray(value, dtype=float) - middle, nan=0.0, posinf=0.0, neginf=0.0)
    return low + shift, high + shift


def _check(arrays: tuple[np.ndarray, ...], level: float, n_boot: int) -> int:
    if not arrays:
        raise ValueError("bootstrap needs at least one array")
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(
            f"arrays are resampled with the same segment indices, so their first axes must "
            f"match; got lengths {sorted(lengths)}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    n = lengths.pop()
    if n < 2:
        raise ValueError("bootstrapping needs at least two segments")
    return n


def _summarise(
    value: Any, samples: list[Any], n: int, level: float
) -> Estimate | dict[str, Estimate]:
    if isinstance(value, Mapping):
        return {key: _summarise(value[key], [s[key] for s in samples], n, level) for key in value}
    low, high = _centred(np.asarray(samples, dtype=float), float(value), level)
    return Estimate(float(value), float(low), float(high), n, level)


def bootstrap(
    statistic: Callable[..., float | Mapping[str, float]],
    *arrays: np.ndarray,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate | dict[str, Estimate]:
    """Percentile bootstrap of a statistic over segments.

    Parameters
    ----------
    statistic : callable
        ``statistic(*arrays) -> float``, or a mapping of names to floats (such as
        :func:`~ephys_eval.metrics.band_power_divergence` returns; each name then gets its own
        :class:`Estimate`). Bind extra arguments with a lambda or :func:`functools.partial`.
    *arrays : ndarray, shape (N, ...)
        Data whose first axis is the segments; all are resampled with the same indices, so
        paired arrays (a forecast and its continuation) stay paired.
    n_boot : int
        Number of resamples; the cost is ``n_boot`` calls of ``statistic``.
    level : float
        Coverage of the interval.
    seed : int
        Seed of the resampling: the same seed gives the same interval.

    Returns
    -------
    Estimate or dict of str to Estimate
        ``value`` is the statistic of the original arrays, ``low``/``high`` the
        ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled statistics
        (resamples giving NaN are left out), moved as the notes say; ``n`` the number of
        segments. The interval narrows
        like ``1 / sqrt(N)``.

    Notes
    -----
    Resampling with replacement repeats segments, which biases two-sample statistics such as a
    distance between distributions (repeats make a sample lumpier) or a coherence (fewer
    distinct segments average less noise away): their resampled values can lie wholly on one
    side of the value. The interval is therefore the resamples' percentile interval moved so
    that their median sits on the value: it states the sampling spread around the number it
    qualifies. For a mean over segments the move is negligible. Judge whether a distance is
    as small as real data allows against :func:`real_null`, not by whether its interval holds 0.
    """
    n = _check(arrays, level, n_boot)
    value = statistic(*arrays)
    indices = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    samples = [statistic(*(a[i] for a in arrays)) for i in indices]
    return _summarise(value, samples, n, level)


def bootstrap_curve(
    statistic: Callable[..., np.ndarray],
    *arrays: np.ndarray,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> CurveEstimate:
    """Percentile bootstrap of a curve over segments, pointwise.

    Parameters
    ----------
    statistic : callable
        ``statistic(*arrays) -> ndarray (H,)``, e.g.
        :func:`~ephys_eval.metrics.divergence_null` or
        :func:`~ephys_eval.metrics.divergence_curve`.
    *arrays : ndarray, shape (N, ...)
        Data whose first axis is the segments, resampled with the same indices.
    n_boot, level, seed
        As in :func:`bootstrap`.

    Returns
    -------
    CurveEstimate
        The curve of the original arrays and its pointwise interval, each ``(H,)``.
    """
    n = _check(arrays, level, n_boot)
    value = np.asarray(statistic(*arrays), dtype=float)
    indices = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    samples = np.stack([statistic(*(a[i] for a in arrays)) for i in indices])
    low, high = _centred(samples, value, level)
    return CurveEstimate(value, low, high, n, level)


def real_null(
    metric: Callable[..., float | Mapping[str, float]],
    real: np.ndarray,
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    **kwargs: Any,
) -> Estimate | dict[str, Estimate]:
    """What a two-sample metric gives between two halves of the real data.

    The real segments are split at random into two disjoint halves of ``N // 2`` segments and
    ``metric(half_a, half_b, **kwargs)`` is evaluated; this is repeated for ``n_boot`` random
    splits (a permutation distribution: resampling the split rather than drawing with
    replacement, so that no segment is ever compared with a copy of itself).

    Reading a forecaster's value beside it: the forecaster is *as good as real data* on this
    metric when its value is no larger than the null's ``high`` (within the null interval, or
    below it); above ``high``, generated and real data differ more than two samples of real data
    do. Two caveats: each half holds ``N // 2`` segments, and distribution distances shrink as
    samples grow, so a forecaster scored on all N segments is judged a little generously (for a
    like-for-like judgement score it on ``N // 2`` segments); and a value well below ``low``
    can mean that the forecaster copies the real segments. All splits come from the same N
    segments, so the interval is how the metric varies between halves of *this* data set, a
    little narrower than its spread over fresh data sets: in tests with N = 32, a same-size
    draw of the same process fell inside the 0.99 interval about 94 % of the time (and below
    ``low`` rather than above ``high`` when it fell outside).

    Parameters
    ----------
    metric : callable
        ``metric(a, b, **kwargs) -> float`` (or a mapping of names to floats), symmetric in
        meaning: any function of :mod:`ephys_eval.metrics` that compares two sets.
    real : ndarray, shape (N, ...)
        Real segments (the first axis), N >= 4.
    n_boot : int
        Number of random splits.
    level : float
        Coverage of the interval.
    seed : int
        Seed of the splits.
    **kwargs
        Passed to ``metric`` (e.g. ``sfreq=...``).

    Returns
    -------
    Estimate or dict of str to Estimate
        ``value`` the median over splits, ``low``/``high`` the percentile interval over splits,
        ``n`` the number of segments in each half.
    """
    if len(real) < 4:
        raise ValueError(f"the real-versus-real null needs at least 4 segments, got {len(real)}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    half = len(real) // 2
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        order = rng.permutation(len(real))
        samples.append(metric(real[order[:half]], real[order[half : 2 * half]], **kwargs))
    first = samples[0]
    keys = list(first) if isinstance(first, Mapping) else None

    def summarise(values: list[float]) -> Estimate:
        arr = np.asarray(values, dtype=float)
        low, high = _interval(arr, level)
        finite = arr[np.isfinite(arr)]
        middle = float(np.median(finite)) if len(finite) else math.nan
        return Estimate(middle, float(low), float(high), half, level)

    if keys is None:
        return summarise(samples)
    return {key: summarise([s[key] for s in samples]) for key in keys}
