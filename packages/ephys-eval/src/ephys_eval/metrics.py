"""Comparisons of generated and real signals: spectra, covariance, divergence over the horizon.

All functions take ``(N, C, T)`` arrays (N examples, C channels, T samples) in the same units.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch

__all__ = ["correlation_distance", "divergence_curve", "mean_psd", "psd_log_distance"]


def mean_psd(
    x: np.ndarray, sfreq: float, nperseg: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density averaged over examples and channels: ``(freqs, psd)``."""
    n = x.shape[-1]
    nperseg = min(nperseg or int(sfreq), n)
    freqs, psd = welch(x, fs=sfreq, nperseg=nperseg, axis=-1)
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


def _correlation(x: np.ndarray) -> np.ndarray:
    flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    std = flat.std(axis=1, keepdims=True)
    flat = np.divide(
        flat - flat.mean(axis=1, keepdims=True), std, out=np.zeros_like(flat), where=std > 0
    )
    return flat @ flat.T / flat.shape[1]


def correlation_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """Relative Frobenius distance between channel correlation matrices (0 = identical)."""
    c_gen, c_real = _correlation(generated), _correlation(real)
    return float(np.linalg.norm(c_gen - c_real) / max(np.linalg.norm(c_real), 1e-12))


def divergence_curve(generated: np.ndarray, real: np.ndarray, smooth: int = 1) -> np.ndarray:
    """Normalised mean squared error at each horizon step: ``(T,)``.

    The error at step ``h`` is averaged over examples and channels and divided by the variance
    of the real continuation, so 1 is as far off as an unrelated signal of the right power and 2
    is what an independent draw of the same process scores.
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
