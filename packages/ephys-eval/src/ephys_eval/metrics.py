"""Comparisons of generated and real signals: spectra, band power, connectivity, divergence.

All functions take ``(N, C, T)`` arrays (N segments or examples, C channels, T samples) in the
same units, and the sampling frequency ``sfreq`` in Hz where they need one. Distribution metrics
(``band_power_divergence``, ``coherence_distance``, ``covariance_distance``, ...) are 0 for
identical inputs; to know what value counts as "as good as real data", compare a forecaster's
value with the real-versus-real null of :func:`ephys_eval.stats.real_null`, and give it a
confidence interval over segments with :func:`ephys_eval.stats.bootstrap`.

Every function that is computed per segment (``segment_psd``, ``band_powers``,
``aperiodic_exponent``, ``peak_alpha_frequency``) gives the same rows for a resampled set of
segments as the resampled rows of the full set, so they can be computed once and the bootstrap
run on their output (see :mod:`ephys_eval.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
from scipy.signal import get_window, welch

__all__ = [
    "BANDS",
    "COHERENCE_BAND",
    "aperiodic_exponent",
    "band_power_divergence",
    "band_powers",
    "bands_for",
    "coherence_distance",
    "coherence_matrix",
    "correlation_distance",
    "covariance_distance",
    "cross_spectra",
    "divergence_curve",
    "divergence_null",
    "feature_divergence",
    "fit_range",
    "lowpass_edge",
    "mean_psd",
    "peak_alpha_frequency",
    "psd_log_distance",
    "segment_psd",
    "time_to_divergence",
]

BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}
"""Canonical MEG/EEG frequency bands: name -> ``(low, high)`` edges in Hz."""

#: Broadband default of :func:`coherence_matrix`: the range that holds most of the structured
#: (delta to beta) activity of MEG/EEG, present with or without an alpha rhythm.
COHERENCE_BAND: tuple[float, float] = (1.0, 30.0)

_RELATIVE_RANGE = (1.0, 45.0)  # total power of ``band_powers(relative=True)``, Hz


# -- spectra ------------------------------------------------------------------------------------


def _nperseg(n_times: int, sfreq: float, nperseg: int | None) -> int:
    return max(1, min(int(nperseg) if nperseg else int(round(sfreq)), n_times))


def segment_psd(
    x: np.ndarray, sfreq: float, nperseg: int | None = None, nfft: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density of every segment and channel.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Signals (any leading shape works; the last axis is time).
    sfreq : float
        Sampling frequency in Hz.
    nperseg : int, optional
        Welch window length in samples. Defaults to ``min(T, round(sfreq))``: one-second
        Hann windows with half overlap, hence a 1 Hz frequency resolution whenever segments last
        at least a second (``sfreq / T`` Hz otherwise). Longer values are clipped to ``T``.
    nfft : int, optional
        FFT length (zero padding; a finer frequency grid, not a finer resolution). Defaults to
        the window length.

    Returns
    -------
    freqs : ndarray, shape (F,)
        Frequencies in Hz, from 0 to Nyquist.
    psd : ndarray, shape (N, C, F)
        One-sided power spectral density, in units of ``x`` squared per Hz; exactly 0 for a
        constant segment.
    """
    nperseg = _nperseg(x.shape[-1], sfreq, nperseg)
    nfft = max(nperseg, int(nfft)) if nfft else None
    freqs, psd = welch(x, fs=sfreq, nperseg=nperseg, nfft=nfft, axis=-1)
    # a constant segment has no power: Welch's detrending leaves rounding noise (~1e-35)
    # whose "spectrum" would otherwise be fitted and searched for peaks like a real one
    flat = np.ptp(x, axis=-1) == 0
    if flat.any():
        psd = np.where(flat[..., None], 0.0, psd)
    return freqs, psd


def mean_psd(
    x: np.ndarray, sfreq: float, nperseg: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD averaged over segments and channels.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Signals.
    sfreq : float
        Sampling frequency in Hz.
    nperseg : int, optional
        Welch window length in samples; see :func:`segment_psd`.

    Returns
    -------
    freqs : ndarray, shape (F,)
        Frequencies in Hz.
    psd : ndarray, shape (F,)
        Mean PSD in units of ``x`` squared per Hz.
    """
    freqs, psd = segment_psd(x, sfreq, nperseg)
    return freqs, psd.reshape(-1, psd.shape[-1]).mean(axis=0)


def psd_log_distance(
    generated: np.ndarray, real: np.ndarray, sfreq: float, fmin: float = 1.0
) -> float:
    """Mean absolute difference of log10 PSDs above ``fmin`` Hz (0 = identical spectra).

    A difference of 1 means an order of magnitude of power on average. Power below a millionth
    of the real spectrum's peak counts as that floor, so a constant forecast scores a finite
    (large) distance.
    """
    freqs, p_gen = mean_psd(generated, sfreq)
    _, p_real = mean_psd(real, sfreq)
    keep = freqs >= fmin
    floor = max(float(p_real.max()), 1e-30) * 1e-6
    log_gen = np.log10(np.maximum(p_gen[keep], floor))
    log_real = np.log10(np.maximum(p_real[keep], floor))
    return float(np.mean(np.abs(log_gen - log_real)))


def _log10_spectrum(psd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log10 of each spectrum (last axis) floored at 1e-12 of its maximum; and which have power."""
    peak = psd.max(axis=-1, keepdims=True)
    has_power = peak[..., 0] > 0
    floor = np.where(peak > 0, peak * 1e-12, 1.0)
    return np.log10(np.maximum(psd, floor)), has_power


# -- band power ---------------------------------------------------------------------------------


def bands_for(
    sfreq: float, bands: Mapping[str, tuple[float, float]] = BANDS
) -> dict[str, tuple[float, float]]:
    """The bands that a signal sampled at ``sfreq`` Hz can hold.

    Parameters
    ----------
    sfreq : float
        Sampling frequency in Hz.
    bands : mapping of str to (float, float)
        Band name -> ``(low, high)`` in Hz; :data:`BANDS` by default.

    Returns
    -------
    dict of str to (float, float)
        The bands whose lower edge lies below Nyquist (``sfreq / 2``), in the given order, with
        upper edges clipped to Nyquist.
    """
    nyquist = sfreq / 2
    return {
        name: (float(low), float(min(high, nyquist)))
        for name, (low, high) in bands.items()
        if low < nyquist
    }


def _band_weights(freqs: np.ndarray, edges: list[tuple[float, float]]) -> np.ndarray:
    """Weights ``(F, B)`` that integrate the linear interpolant of a spectrum over each band.

    Band power is then ``psd @ weights``: exact for a spectrum that is linear between bins, so
    bands narrower than a bin still get their share of power and adjacent bands add up.
    """
    n_freqs = len(freqs)
    weights = np.zeros((n_freqs, len(edges)))
    for b, (low, high) in enumerate(edges):
        low, high = max(low, freqs[0]), min(high, freqs[-1])
        if high <= low or n_freqs < 2:
            continue
        grid = np.concatenate([[low], freqs[(freqs > low) & (freqs < high)], [high]])
        left = np.clip(np.searchsorted(freqs, grid, side="right") - 1, 0, n_freqs - 2)
        frac = (grid - freqs[left]) / (freqs[left + 1] - freqs[left])
        steps = np.diff(grid)
        trapezoid = np.zeros_like(grid)
        trapezoid[:-1] += steps / 2
        trapezoid[1:] += steps / 2
        np.add.at(weights[:, b], left, trapezoid * (1 - frac))
        np.add.at(weights[:, b], left + 1, trapezoid * frac)
    return weights


def band_powers(
    x: np.ndarray,
    sfreq: float,
    bands: Mapping[str, tuple[float, float]] | None = None,
    relative: bool = False,
    nperseg: int | None = None,
    floor: float | None = None,
) -> np.ndarray:
    """log10 band power of every segment and channel.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Signals.
    sfreq : float
        Sampling frequency in Hz.
    bands : mapping of str to (float, float), optional
        Band name -> ``(low, high)`` in Hz; ``bands_for(sfreq)`` by default. The last axis of
        the result follows its order.
    relative : bool
        Divide each band power by the total power between 1 Hz and ``min(45, nyquist)`` Hz.
    nperseg : int, optional
        Welch window length in samples; see :func:`segment_psd`.
    floor : float, optional
        Powers below ``floor`` count as ``floor`` (in the units of the returned power before the
        log), so silent channels give a finite value. Defaults to 1e-12 of the largest band power
        in ``x``.

    Returns
    -------
    ndarray, shape (N, C, B)
        log10 of the PSD integrated over each band (linear interpolation between Welch bins),
        in log10 of units of ``x`` squared; dimensionless (log10 of a fraction) when
        ``relative``.
    """
    bands = bands_for(sfreq) if bands is None else dict(bands)
    freqs, psd = segment_psd(x, sfreq, nperseg)
    edges = list(bands.values())
    if relative:
        edges.append((_RELATIVE_RANGE[0], min(_RELATIVE_RANGE[1], sfreq / 2)))
    power = psd @ _band_weights(freqs, edges)
    if relative:
        total = power[..., -1:]
        power = np.divide(
            power[..., :-1], total, out=np.zeros_like(power[..., :-1]), where=total > 0
        )
    if floor is None:
        peak = float(power.max()) if power.size else 0.0
        floor = peak * 1e-12 if peak > 0 else np.finfo(float).tiny
    return np.log10(np.maximum(power, floor))


def _wasserstein1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1-D Wasserstein-1 distance between the samples on the last axes of ``a`` and ``b``.

    Vectorised over the leading axes (which must broadcast): the integral of the absolute
    difference of the two quantile functions, which are step functions with breakpoints at
    ``i / n`` and ``j / m``. Equals ``scipy.stats.wasserstein_distance`` for each row.
    """
    n, m = a.shape[-1], b.shape[-1]
    ends = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    widths = np.diff(ends, prepend=0.0)
    mids = ends - widths / 2
    q_a = np.sort(a, axis=-1)[..., np.minimum((mids * n).astype(int), n - 1)]
    q_b = np.sort(b, axis=-1)[..., np.minimum((mids * m).astype(int), m - 1)]
    return (np.abs(q_a - q_b) * widths).sum(axis=-1)


def feature_divergence(generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance between per-segment features, per feature, averaged over channels.

    Parameters
    ----------
    generated : ndarray, shape (N_gen, C, K)
        K features of every generated segment and channel (e.g. :func:`band_powers`, or
        :func:`aperiodic_exponent` with a trailing axis of length 1). Must be finite.
    real : ndarray, shape (N_real, C, K)
        The same features of the real segments.

    Returns
    -------
    ndarray, shape (K,)
        For each feature, the 1-D Wasserstein-1 distance between its distribution over the
        generated segments and over the real ones (the mean absolute difference of their
        quantiles, in the units of the feature), computed per channel and averaged over
        channels. Equals :func:`scipy.stats.wasserstein_distance`, vectorised.
    """
    if generated.shape[1:] != real.shape[1:]:
        raise ValueError(f"feature shapes differ: {generated.shape[1:]} and {real.shape[1:]}")
    per_channel = _wasserstein1(np.moveaxis(generated, 0, -1), np.moveaxis(real, 0, -1))
    return per_channel.mean(axis=0)


def band_power_divergence(
    generated: np.ndarray,
    real: np.ndarray,
    sfreq: float,
    bands: Mapping[str, tuple[float, float]] | None = None,
    relative: bool = False,
    nperseg: int | None = None,
) -> dict[str, float]:
    """Distance between the distributions of log10 band power of two sets of segments.

    For each band and channel, the 1-D Wasserstein-1 distance between the log10 band powers of
    the generated segments and of the real ones (over segments), averaged over channels.

    Bootstrapping it recomputes the spectra of every resample (1.5-4.5 ms per call for
    N = 16, C = 16, T = 200, so 0.3-0.5 s for 200 resamples). Band powers are per segment, so
    the cheaper path computes them once and resamples their rows (15 ms for 200 resamples)::

        floor = 10.0 ** (band_powers(real, sfreq).max() - 6)
        p_gen, p_real = (band_powers(x, sfreq, floor=floor) for x in (generated, real))
        bootstrap(lambda g, r: feature_divergence(g, r).mean(), p_gen, p_real)

    Parameters
    ----------
    generated : ndarray, shape (N_gen, C, T)
        Generated signals.
    real : ndarray, shape (N_real, C, T)
        Real signals, same channels and units (N may differ).
    sfreq : float
        Sampling frequency in Hz.
    bands : mapping of str to (float, float), optional
        Band name -> ``(low, high)`` in Hz; ``bands_for(sfreq)`` by default.
    relative : bool
        Compare relative band powers (see :func:`band_powers`).
    nperseg : int, optional
        Welch window length in samples; see :func:`segment_psd`.

    Returns
    -------
    dict of str to float
        One distance per band and their ``"mean"``, in decades (log10 units): 0 for identical
        distributions, 1 when the generated power is off by a factor of ten. Power below a
        millionth of the largest real band power counts as that floor in both sets, so a
        constant forecast scores a finite (large) distance.
    """
    bands = bands_for(sfreq) if bands is None else dict(bands)
    args = (sfreq, bands, relative, nperseg)
    p_real = band_powers(real, *args)  # floored at 1e-12 of its maximum, below the 1e-6 here
    log_floor = float(p_real.max()) - 6.0
    p_gen = band_powers(generated, *args, floor=10.0**log_floor)
    distances = feature_divergence(p_gen, np.maximum(p_real, log_floor))
    result = {name: float(d) for name, d in zip(bands, distances, strict=True)}
    result["mean"] = float(distances.mean())
    return result


# -- aperiodic exponent and alpha peak -----------------------------------------------------------


def _fit_mask(
    freqs: np.ndarray, fmin: float, fmax: float, exclude: tuple[float, float] | None
) -> np.ndarray:
    mask = (freqs >= fmin) & (freqs <= fmax)
    if exclude is not None:
        mask &= (freqs < exclude[0]) | (freqs > exclude[1])
    if mask.sum() < 2:
        raise ValueError(
            f"fewer than two frequencies between {fmin} and {fmax} Hz outside {exclude} Hz: "
            "lengthen the segments or widen the fit range"
        )
    return mask


def _power_law_fit(
    freqs: np.ndarray, log_psd: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line of log10 PSD on log10 f over ``mask``: ``(offset, slope)``."""
    log_f = np.log10(freqs[mask])
    centred = log_f - log_f.mean()
    y = log_psd[..., mask]
    slope = (y - y.mean(axis=-1, keepdims=True)) @ centred / (centred @ centred)
    offset = y.mean(axis=-1) - slope * log_f.mean()
    return offset, slope


def _default_fmax(sfreq: float) -> float:
    return min(40.0, 0.8 * sfreq / 2)


def lowpass_edge(
    x: np.ndarray,
    sfreq: float,
    steepness: float = 8.0,
    depth: float = 2.0,
    gap: float = 5.0,
    fmin: float = 15.0,
    nperseg: int | None = None,
) -> float | None:
    """The frequency where a low-pass filter starts to cut the spectrum of ``x``, or ``None``.

    Preprocessed recordings are low-passed (1-30 Hz in the quickstart and the benchmark) and
    sampled above twice the cut-off, so their spectrum ends in a cliff several decades deep
    well below Nyquist. A power law fitted across that cliff is meaningless and its residual
    swamps any peak. The edge is the first frequency ``f >= fmin`` where the mean spectrum
    (over segments and channels) falls faster than ``f^-steepness`` to the next Welch bin (no
    aperiodic brain activity is that steep: its exponents lie around 0.5-4; a filter's
    transition band is, at tens) *and* everywhere from ``f + gap`` Hz to Nyquist stays at least
    ``depth`` decades below its lowest value in the ``gap`` Hz under ``f``: the flank of a
    narrow spectral peak is steep too, but the background on either side of a peak is at the
    same level, while a filter leaves the passband orders of magnitude above the stopband.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Real signals.
    sfreq : float
        Sampling frequency in Hz.
    steepness : float
        Local log-log slope (decades of power per decade of frequency) that marks the edge.
    depth : float
        Decades between the spectrum just under the edge and everything beyond it.
    gap : float
        Width in Hz of the passband stretch under the edge and of the transition band above
        it that the comparison leaves out.
    fmin : float
        Frequencies below this are never taken for the edge.
    nperseg : int, optional
        Welch window length in samples; see :func:`segment_psd`.

    Returns
    -------
    float or None
        The edge in Hz; ``None`` when the spectrum has no such cliff (or no power).
    """
    freqs, psd = mean_psd(x, sfreq, nperseg)
    keep = (freqs > 0) & (psd > 0)
    freqs, log_psd = freqs[keep], np.log10(psd[keep])
    if len(freqs) < 2:
        return None
    slope = np.diff(log_psd) / np.diff(np.log10(freqs))
    for i in np.flatnonzero((slope < -steepness) & (freqs[:-1] >= fmin)):
        f = freqs[i]
        below, beyond = log_psd[(freqs >= f - gap) & (freqs <= f)], log_psd[freqs >= f + gap]
        if len(beyond) and beyond.max() <= below.min() - depth:
            return float(f)
    return None


def fit_range(x: np.ndarray, sfreq: float, fmin: float = 2.0) -> tuple[float, float]:
    """The aperiodic fit range for real signals ``x``: ``fmin`` up to ``min(40 Hz, 0.8 x
    Nyquist)``, or up to the low-pass edge (:func:`lowpass_edge`) when that comes first."""
    fmax = _default_fmax(sfreq)
    edge = lowpass_edge(x, sfreq)
    return fmin, fmax if edge is None else min(fmax, edge)


def aperiodic_exponent(
    x: np.ndarray,
    sfreq: float,
    fmin: float = 2.0,
    fmax: float | None = None,
    exclude: tuple[float, float] | None = (7.0, 14.0),
    nperseg: int | None = None,
    average: bool = False,
) -> np.ndarray:
    """1/f exponent ``chi`` of ``PSD ~ f^-chi`` for every segment and channel.

    A simple power-law fit, not FOOOF/specparam: ordinary least squares of log10 PSD on log10 f
    over ``[fmin, fmax]`` with the ``exclude`` band (the alpha peak by default) left out; no
    knee and no model of the periodic peaks beyond excluding one band.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Signals.
    sfreq : float
        Sampling frequency in Hz.
    fmin, fmax : float
        Fit range in Hz; ``fmax`` defaults to ``min(40, 0.8 * nyquist)``.
    exclude : (float, float) or None
        Band in Hz left out of the fit.
    nperseg : int, optional
        Welch window length in samples; see :func:`segment_psd`.
    average : bool
        Fit each channel's spectrum averaged over the segments instead of every segment's
        (a population value: a few-second segment's spectrum is too noisy for a stable fit).

    Returns
    -------
    ndarray, shape (N, C), or (C,) with ``average``
        Exponent (dimensionless): 0 for white noise, 2 for integrated white noise (a random
        walk). NaN for channels without power.
    """
    freqs, psd = segment_psd(x, sfreq, nperseg)
    if average:
        psd = psd.mean(axis=0)
    mask = _fit_mask(freqs, fmin, _default_fmax(sfreq) if fmax is None else fmax, exclude)
    log_psd, has_power = _log10_spectrum(psd)
    _, slope = _power_law_fit(freqs, log_psd, mask)
    return np.where(has_power, -slope, np.nan)


def peak_alpha_frequency(
    x: np.ndarray,
    sfreq: float,
    band: tuple[float, float] = (7.0, 14.0),
    min_peak: float = 0.1,
    min_z: float = 3.0,
    fmin: float = 2.0,
    fmax: float | None = None,
    nperseg: int | None = None,
    nfft: int | None = None,
    average: bool = False,
) -> np.ndarray:
    """Frequency of the alpha peak above the aperiodic background, per segment and channel.

    The PSD is fitted with a power law outside ``band`` (as :func:`aperiodic_exponent` does,
    with ``exclude=band``), the fit is subtracted in log10 units, and the maximum of the
    residual within ``band`` is refined by parabolic interpolation over its two neighbours.

    A spectrum estimated from a few Welch windows fluctuates by about 0.1-0.5 decades from bin
    to bin, so a fixed threshold alone would find "peaks" in most white-noise segments. The
    peak must therefore also stand ``min_z`` standard deviations of the residual (measured over
    the fit range, outside ``band``) above the fit. With the defaults, at most about 5 % of
    white-noise segments of 1-10 s show a peak, while a 10 Hz sinusoid with 0.4 times the RMS
    of a 1/f background is found in every 4 s segment at 250 Hz (with 0.2 times, in about
    half); a single window (segments of a second or less) rarely shows one.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Signals.
    sfreq : float
        Sampling frequency in Hz.
    band : (float, float)
        Search band in Hz.
    min_peak : float
        The residual maximum must exceed this many decades (log10 units) above the aperiodic
        fit; 0.1 decades is a 26 % excess of power.
    min_z : float
        The residual maximum must also exceed ``min_z`` times the residual standard deviation
        over the fit range (the noise of the spectrum estimate); 0 disables this test.
    fmin, fmax : float
        Range in Hz of the aperiodic fit; ``fmax`` defaults to ``min(40, 0.8 * nyquist)``.
    nperseg : int, optional
        Welch window length; see :func:`segment_psd` (1 Hz resolution by default: longer
        windows sharpen the peak but average fewer windows, so the noise of the spectrum would
        raise peaks out of white noise).
    nfft : int, optional
        FFT length; defaults to four seconds of samples (at least the window length), which
        zero-pads the spectrum onto a 0.25 Hz grid so that the interpolated peak is not bound to
        the 1 Hz bins.
    average : bool
        Search each channel's spectrum averaged over the segments instead of every segment's:
        the peak of the population. A segment of a few seconds rarely shows a moderate alpha
        rhythm above the noise of its own spectrum; the average over N segments has about
        ``1 / sqrt(N)`` of that noise.

    Notes
    -----
    About 5-7 ms per call for N = 16, C = 16, T = 200 (the zero-padded FFTs), too slow to
    bootstrap by recomputing it (1.1-1.4 s for 200 resamples). The result is per segment, so
    bootstrap a summary of its rows instead (about 10 ms), e.g.
    ``bootstrap(lambda p: float(np.nanmedian(p)), peak_alpha_frequency(x, sfreq))``.

    Returns
    -------
    ndarray, shape (N, C), or (C,) with ``average``
        Peak frequency in Hz; NaN where there is no peak: the residual maximum is below
        ``min_peak`` or ``min_z`` residual standard deviations, lies on an edge of ``band``, or
        the channel has no power.
    """
    n_window = _nperseg(x.shape[-1], sfreq, nperseg)
    nfft = max(n_window, int(nfft) if nfft else int(round(4 * sfreq)))
    freqs, psd = segment_psd(x, sfreq, n_window, nfft)
    if average:
        psd = psd.mean(axis=0)
    mask = _fit_mask(freqs, fmin, _default_fmax(sfreq) if fmax is None else fmax, band)
    log_psd, has_power = _log10_spectrum(psd)
    offset, slope = _power_law_fit(freqs, log_psd, mask)
    inside = np.flatnonzero((freqs >= band[0]) & (freqs <= band[1]))
    if len(inside) < 3:
        raise ValueError(f"the band {band} Hz holds fewer than three frequency bins")
    log_f = np.log10(np.where(freqs > 0, freqs, 1.0))
    residual = log_psd - (offset[..., None] + slope[..., None] * log_f)
    # the spread of the residual, robust to other peaks in the fit range (e.g. beta)
    outside = residual[..., mask]
    deviation = np.abs(outside - np.median(outside, axis=-1, keepdims=True))
    noise = 1.4826 * np.median(deviation, axis=-1)
    residual, f_band = residual[..., inside], freqs[inside]
    k = residual.argmax(axis=-1)
    interior = (k > 0) & (k < len(inside) - 1)
    kc = np.clip(k, 1, len(inside) - 2)
    left, centre, right = (
        np.take_along_axis(residual, (kc + d)[..., None], axis=-1)[..., 0] for d in (-1, 0, 1)
    )
    curvature = left - 2 * centre + right
    shift = np.divide(
        0.5 * (left - right), curvature, out=np.zeros_like(centre), where=curvature < 0
    )
    peak = f_band[kc] + np.clip(shift, -0.5, 0.5) * (f_band[1] - f_band[0])
    found = interior & (centre > np.maximum(min_peak, min_z * noise)) & has_power
    return np.where(found, peak, np.nan)


# -- channel structure ---------------------------------------------------------------------------


def _flat(x: np.ndarray) -> np.ndarray:
    """Channels by pooled samples, each channel's mean over all segments removed: ``(C, N*T)``."""
    flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    return flat - flat.mean(axis=1, keepdims=True)


def _correlation(x: np.ndarray) -> np.ndarray:
    flat = _flat(x)
    std = flat.std(axis=1, keepdims=True)
    flat = np.divide(flat, std, out=np.zeros_like(flat), where=std > 0)
    return flat @ flat.T / flat.shape[1]


def _relative_frobenius(a: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(a - reference) / max(np.linalg.norm(reference), 1e-30))


def correlation_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """Relative Frobenius distance between channel correlation matrices (0 = identical)."""
    c_gen, c_real = _correlation(generated), _correlation(real)
    return float(np.linalg.norm(c_gen - c_real) / max(np.linalg.norm(c_real), 1e-12))


def covariance_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """Relative Frobenius distance between channel covariance matrices.

    Unlike :func:`correlation_distance`, it sees the power of each channel as well as their
    coupling.

    Parameters
    ----------
    generated : ndarray, shape (N_gen, C, T)
        Generated signals.
    real : ndarray, shape (N_real, C, T)
        Real signals, same channels and units.

    Returns
    -------
    float
        ``||cov_gen - cov_real||_F / ||cov_real||_F`` (dimensionless, 0 = identical), each
        covariance pooling the samples of all segments around the channel's overall mean.
    """
    cov = [(f @ f.T) / f.shape[1] for f in (_flat(generated), _flat(real))]
    return _relative_frobenius(cov[0], cov[1])


def _windowed_spectra(
    x: np.ndarray, sfreq: float, nperseg: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed, demeaned FFTs of the half-overlapping windows: ``(freqs, (N, C, W, F))``.

    The windows of :func:`scipy.signal.welch` with its defaults, so the averaged cross-spectra
    are those of :func:`scipy.signal.csd` up to a constant factor.
    """
    nperseg = _nperseg(x.shape[-1], sfreq, nperseg)
    frames = np.lib.stride_tricks.sliding_window_view(x, nperseg, axis=-1)
    frames = frames[..., :: nperseg - nperseg // 2, :]
    frames = frames - frames.mean(axis=-1, keepdims=True)
    spectra = np.fft.rfft(frames * get_window("hann", nperseg), axis=-1)
    return np.fft.rfftfreq(nperseg, 1 / sfreq), spectra


def cross_spectra(
    x: np.ndarray,
    sfreq: float,
    band: tuple[float, float] | None = None,
    nperseg: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-spectral matrices of every segment, summed over its Welch windows.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Signals.
    sfreq : float
        Sampling frequency in Hz.
    band : (float, float), optional
        Frequency range in Hz kept; :data:`COHERENCE_BAND` (1-30 Hz) by default, clipped to
        Nyquist.
    nperseg : int, optional
        Window length in samples; see :func:`segment_psd`.

    Returns
    -------
    freqs : ndarray, shape (F,)
        Frequencies in Hz within ``band``.
    cross : ndarray, shape (N, F, C, C), complex
        ``sum_w X_i(f) conj(X_j(f))`` over the Hann-windowed, demeaned, half-overlapping
        windows ``w`` of each segment (unscaled: coherence does not need the scale).
    """
    low, high = COHERENCE_BAND if band is None else band
    freqs, spectra = _windowed_spectra(x, sfreq, nperseg)
    keep = (freqs >= low) & (freqs <= min(high, sfreq / 2))
    if not keep.any():
        raise ValueError(f"no frequency bin between {low} and {high} Hz: lengthen the segments")
    spectra = np.moveaxis(spectra[..., keep], -1, 1)  # (N, F, C, W)
    return freqs[keep], spectra @ np.swapaxes(spectra, -1, -2).conj()


def _coherence(cross: np.ndarray) -> np.ndarray:
    """Band-averaged coherence ``(C, C)`` of cross-spectra ``(N, F, C, C)`` pooled over N."""
    pooled = cross.sum(axis=0)
    auto = np.real(np.diagonal(pooled, axis1=-2, axis2=-1))
    denom = auto[:, :, None] * auto[:, None, :]
    power = pooled.real**2 + pooled.imag**2
    coh = np.divide(power, denom, out=np.zeros(denom.shape), where=denom > 0)
    return coh.mean(axis=0)


def coherence_matrix(
    x: np.ndarray,
    sfreq: float,
    band: tuple[float, float] | None = None,
    nperseg: int | None = None,
) -> np.ndarray:
    """Magnitude-squared coherence between every pair of channels, averaged over a band.

    The cross-spectra are averaged over the Welch windows of all segments (the segments are
    pooled, as repeated trials), then ``|S_ij|^2 / (S_ii S_jj)`` is taken at each frequency and
    averaged over the frequencies of ``band``. For one segment it is the band average of
    :func:`scipy.signal.coherence`. Coherence estimated from K windows is biased upwards by
    about 1/K for independent channels, so compare sets of similar size.

    Parameters
    ----------
    x : ndarray, shape (N, C, T)
        Signals.
    sfreq : float
        Sampling frequency in Hz.
    band : (float, float), optional
        Frequency range in Hz; defaults to :data:`COHERENCE_BAND` (1-30 Hz, a broadband summary
        that exists with or without an alpha rhythm; pass ``BANDS["alpha"]`` for the alpha
        band), clipped to Nyquist.
    nperseg : int, optional
        Window length in samples; see :func:`segment_psd`.

    Returns
    -------
    ndarray, shape (C, C)
        Coherence in [0, 1] (dimensionless); 1 on the diagonal of channels with power, 0 for
        pairs involving a channel without power.
    """
    return _coherence(cross_spectra(x, sfreq, band, nperseg)[1])


def coherence_distance(
    generated: np.ndarray,
    real: np.ndarray,
    sfreq: float,
    band: tuple[float, float] | None = None,
    nperseg: int | None = None,
) -> float:
    """Relative Frobenius distance between the coherence matrices of two sets of segments.

    Parameters
    ----------
    generated : ndarray, shape (N_gen, C, T)
        Generated signals.
    real : ndarray, shape (N_real, C, T)
        Real signals, same channels.
    sfreq : float
        Sampling frequency in Hz.
    band : (float, float), optional
        Frequency range in Hz; 1-30 Hz by default (see :func:`coherence_matrix`).
    nperseg : int, optional
        Window length in samples; see :func:`segment_psd`.

    Returns
    -------
    float
        ``||coh_gen - coh_real||_F / ||coh_real||_F`` (dimensionless, 0 = identical).

    Notes
    -----
    About 1-2 ms per call for N = 16, C = 16, T = 200 (growing as C^2), so 0.2-0.3 s for 200
    bootstrap resamples.
    """
    return _relative_frobenius(
        coherence_matrix(generated, sfreq, band, nperseg),
        coherence_matrix(real, sfreq, band, nperseg),
    )


# -- divergence over the horizon ----------------------------------------------------------------


def divergence_curve(generated: np.ndarray, real: np.ndarray, smooth: int = 1) -> np.ndarray:
    """Normalised mean squared error at each horizon step: ``(T,)``.

    The error at step ``h`` is averaged over examples and channels and divided by the variance
    of the real continuation, so 1 is what forecasting the mean scores (and where the error of
    the best point forecast levels off) and 2 is what an independent draw of the same process
    scores (where a sampled rollout levels off); :func:`divergence_null` measures the latter on
    real data.
    """
    err = ((generated - real) ** 2).mean(axis=(0, 1))
    curve = err / max(float(real.var()), 1e-12)
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        curve = np.convolve(
            np.pad(curve, (smooth // 2, smooth - 1 - smooth // 2), mode="edge"),
            kernel,
            mode="valid",
        )
    return curve


def divergence_null(
    continuation: np.ndarray, others: np.ndarray | None = None, smooth: int = 1
) -> np.ndarray:
    """Divergence curve of unrelated real data: the real-versus-real null of the horizon.

    Parameters
    ----------
    continuation : ndarray, shape (N, C, H)
        The true continuations of the N contexts.
    others : ndarray, shape (N, C, H), optional
        Real segments of the same split that are unrelated to the contexts (other recordings or
        times). Defaults to the continuations themselves, shifted by ``N // 2`` along the
        segments, which is unrelated data as long as the segments do not overlap. Pass it
        explicitly when bootstrapping (``bootstrap_curve(divergence_null, continuation,
        others)``): shifting a resample would pair some segments with copies of themselves.
    smooth : int
        Moving-average width in steps, as in :func:`divergence_curve`; use the forecasters'.

    Returns
    -------
    ndarray, shape (H,)
        ``divergence_curve(others, continuation)``: the error of "forecasting" each
        continuation with unrelated real data, normalised like the forecasters' curves. About 2
        at every step for stationary data.
    """
    if others is None:
        if len(continuation) < 2:
            raise ValueError("the null needs at least two segments")
        others = np.roll(continuation, len(continuation) // 2, axis=0)
    if others.shape != continuation.shape:
        raise ValueError(f"others {others.shape} must match continuation {continuation.shape}")
    return divergence_curve(others, continuation, smooth=smooth)


def time_to_divergence(
    curve: np.ndarray,
    null_curve: np.ndarray,
    horizon_seconds: np.ndarray | float,
    lower: np.ndarray | None = None,
    if_never: Literal["horizon", "inf"] = "horizon",
) -> float:
    """First horizon at which a forecaster's error is as large as unrelated real data gives.

    Parameters
    ----------
    curve : ndarray, shape (H,)
        The forecaster's :func:`divergence_curve`.
    null_curve : ndarray, shape (H,)
        :func:`divergence_null` of the same continuations.
    horizon_seconds : ndarray, shape (H,), or float
        The horizon of each step in seconds, or the whole horizon (steps then at
        ``(h + 1) * horizon_seconds / H``).
    lower : ndarray, shape (H,), optional
        Lower confidence bound of the null curve (e.g. ``bootstrap_curve(divergence_null,
        continuation, others).low``); when given, the forecaster has diverged as soon as it
        enters the null's interval rather than when it reaches its centre.
    if_never : {"horizon", "inf"}
        What to return when the curve never reaches the threshold: the full horizon (a
        right-censored value: "not before the end of the horizon"; the default, which keeps
        numbers finite and JSON-ready) or ``math.inf``.

    Returns
    -------
    float
        Time in seconds of the first step with ``curve >= threshold`` (threshold = ``lower`` if
        given, else ``null_curve``).
    """
    curve = np.asarray(curve, dtype=float)
    threshold = np.asarray(null_curve if lower is None else lower, dtype=float)
    if curve.shape != threshold.shape:
        raise ValueError(f"curve {curve.shape} and null {threshold.shape} differ in length")
    if np.ndim(horizon_seconds) == 0:
        times = np.arange(1, len(curve) + 1) * float(horizon_seconds) / len(curve)
    else:
        times = np.asarray(horizon_seconds, dtype=float)
    reached = np.flatnonzero(curve >= threshold)
    if len(reached):
        return float(times[reached[0]])
    return math.inf if if_never == "inf" else float(times[-1])
