"""Classical linear forecasters: per-channel autoregression and ridge vector autoregression.

These are the baselines a deep forecaster must beat to have learned anything worth training.
Both are fitted by least squares in seconds on the training split and predict the next sample
with a Gaussian whose standard deviation is the residual's.

``AR(p)``
    Every channel on its own: ``x_c[t+1] = b_c + sum_k a_ck x_c[t-k] + e_c``, with one order
    ``p`` for all channels chosen by the Akaike information criterion summed over channels
    (the default) or on a held-out part of the training data.
``VAR(p)``
    All channels together: ``x[t+1] = b + sum_k A_k x[t-k] + e``, each row fitted by ridge
    regression; the order and the ridge strength are chosen by the Gaussian negative
    log-likelihood of one-step predictions on a held-out fifth of the training segments, then
    the model is refitted on all of them.

A forecast at time ``t`` uses only the samples ``<= t`` of the same window, exactly what a
causal model scored on that window sees: near the start of a window, where fewer than ``p``
samples exist, the model of order ``t + 1`` (fitted alongside) is used instead of padding.
Rollouts draw the residual noise (independent per channel for AR, with the residual
covariance for VAR).

All arrays are ``(N, C, T)``: N segments, C channels, T samples, in the units the model sees
(for token data, the codes decoded back to signal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["LinearForecaster", "fit_ar", "fit_var"]

#: relative ridge strengths tried for VAR (times the mean diagonal of the Gram matrix)
RIDGES = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
#: VAR orders tried (those longer than the data allows are skipped)
VAR_ORDERS = (1, 2, 4, 8, 12, 16, 24, 32)


@dataclass
class LinearForecaster:
    """A fitted AR or VAR model with its lower-order companions for short histories.

    Attributes
    ----------
    kind
        ``"ar"`` (channels separately) or ``"var"`` (channels together).
    order
        The order ``p`` chosen.
    coefs
        For each order ``q = 1 .. p``: AR ``(C, q)`` (lag 1 first), VAR ``(C, q * C)`` (lag 1's
        channels first, then lag 2's, ...).
    intercepts
        For each order: ``(C,)``.
    sds
        For each order: ``(C,)`` residual standard deviations.
    cov
        ``(C, C)`` residual covariance of the order-``p`` model (diagonal for AR).
    selection
        How the order (and the ridge) were chosen, JSON-ready.
    """

    kind: Literal["ar", "var"]
    order: int
    coefs: list[np.ndarray]
    intercepts: list[np.ndarray]
    sds: list[np.ndarray]
    cov: np.ndarray
    selection: dict[str, Any] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        """Channels the model was fitted on."""
        return int(self.intercepts[0].shape[0])

    def _mean(self, history: np.ndarray, q: int) -> np.ndarray:
        """Next-sample mean ``(N, C)`` from the last ``q`` samples ``history (N, C, q)``,
        most recent last."""
        recent = history[:, :, ::-1]  # lag 1 first
        w, b = self.coefs[q - 1], self.intercepts[q - 1]
        if self.kind == "ar":
            return (recent * w[None]).sum(-1) + b
        lagged = recent.transpose(0, 2, 1).reshape(len(history), -1)  # (N, q * C)
        return lagged @ w.T + b

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One-step forecasts: the mean and standard deviation of ``x[..., t + 1]`` given
        ``x[..., :t + 1]``, for every ``t`` of the window.

        Returns
        -------
        mean, sd
            ``(N, C, T)`` each; position ``t`` forecasts sample ``t + 1``.
        """
        x = np.asarray(x, dtype=np.float64)
        n, c, t = x.shape
        mean = np.empty((n, c, t))
        sd = np.empty((n, c, t))
        for step in range(t):
            q = min(step + 1, self.order)
            mean[:, :, step] = self._mean(x[:, :, step + 1 - q : step + 1], q)
            sd[:, :, step] = self.sds[q - 1][None]
        return mean, sd

    def simulate(self, context: np.ndarray, n_steps: int, rng: np.random.Generator) -> np.ndarray:
        """Continue ``context (N, C, T)`` for ``n_steps`` samples, drawing the residual noise.

        Returns
        -------
        np.ndarray
            ``(N, C, n_steps)``.
        """
        context = np.asarray(context, dtype=np.float64)
        n, c, t = context.shape
        q = min(self.order, t)
        window = context[:, :, t - q :].copy()
        chol = np.linalg.cholesky(self.cov + 1e-12 * np.eye(c))
        out = np.empty((n, c, n_steps))
        for step in range(n_steps):
            noise = rng.standard_normal((n, c)) @ chol.T
            nxt = self._mean(window, q) + noise
            out[:, :, step] = nxt
            if q < self.order:  # the history grows until it holds p samples
                window = np.concatenate([window, nxt[:, :, None]], axis=-1)
                q += 1
            else:
                window = np.concatenate([window[:, :, 1:], nxt[:, :, None]], axis=-1)
        return out

    def to_dict(self) -> dict[str, Any]:
        """What the model is (for reports): kind, order, selection, residual spread."""
        return {
            "kind": self.kind,
            "order": self.order,
            "residual_sd": [float(v) for v in self.sds[self.order - 1]],
            "selection": self.selection,
        }


def _lags(segment: np.ndarray, p: int) -> np.ndarray:
    """``(L - p, p, C)`` lagged samples of one ``(C, L)`` segment, lag 1 first; row ``i``
    predicts sample ``p + i``."""
    windows = np.lib.stride_tricks.sliding_window_view(segment, p, axis=1)  # (C, L-p+1, p)
    return windows[:, :-1, ::-1].transpose(1, 2, 0)


@dataclass
class _Moments:
    """Sufficient statistics of a least-squares fit, summed over segments (so a fit needs
    memory for one segment's design at a time, whatever the order)."""

    gram: np.ndarray  # design' design
    cross: np.ndarray  # design' targets
    power: np.ndarray  # targets' targets
    n: int

    def __add__(self, other: _Moments) -> _Moments:
        return _Moments(
            self.gram + other.gram,
            self.cross + other.cross,
            self.power + other.power,
            self.n + other.n,
        )


def _var_moments(segments: np.ndarray, p: int) -> _Moments:
    """Moments of the lag-major VAR design ``[x[t-1] .. x[t-p], 1]`` -> ``x[t]``."""
    _, c, _ = segments.shape
    size = p * c + 1
    gram, cross, power, n = np.zeros((size, size)), np.zeros((size, c)), np.zeros((c, c)), 0
    for segment in segments:
        lags = _lags(segment, p)
        design = np.concatenate([lags.reshape(len(lags), -1), np.ones((len(lags), 1))], axis=1)
        target = segment[:, p:].T
        gram += design.T @ design
        cross += design.T @ target
        power += target.T @ target
        n += len(target)
    return _Moments(gram, cross, power, n)


def _ar_moments(segments: np.ndarray, p: int) -> _Moments:
    """Per-channel moments of ``[x_c[t-1] .. x_c[t-p], 1]`` -> ``x_c[t]``: ``gram (C, p+1,
    p+1)``, ``cross (C, p+1)``, ``power (C,)``."""
    _, c, _ = segments.shape
    gram, cross, power, n = np.zeros((c, p + 1, p + 1)), np.zeros((c, p + 1)), np.zeros(c), 0
    for segment in segments:
        windows = np.lib.stride_tricks.sliding_window_view(segment, p, axis=1)[:, :-1, ::-1]
        for ch in range(c):  # one channel's design at a time, through BLAS
            design = np.concatenate([windows[ch], np.ones((windows.shape[1], 1))], axis=1)
            target = segment[ch, p:]
            gram[ch] += design.T @ design
            cross[ch] += design.T @ target
            power[ch] += target @ target
        n += segment.shape[1] - p
    return _Moments(gram, cross, power, n)


def _check(segments: np.ndarray, order: int) -> np.ndarray:
    segments = np.asarray(segments, dtype=np.float64)
    if segments.ndim != 3:
        raise ValueError(f"segments must be (N, C, T); got shape {segments.shape}")
    if segments.shape[-1] <= order + 1:
        raise ValueError(
            f"segments of {segments.shape[-1]} samples are too short for order {order}"
        )
    if not np.isfinite(segments).all():
        raise ValueError("segments hold NaN or infinite samples")
    return segments


def fit_ar(
    segments: np.ndarray,
    max_order: int = 32,
    criterion: Literal["aic", "bic"] = "aic",
) -> LinearForecaster:
    """Fit one AR model per channel by least squares, choosing the order on the training data.

    Parameters
    ----------
    segments
        ``(S, C, L)`` training segments (longer than ``max_order``).
    max_order
        Largest order tried; every order ``1 .. max_order`` is fitted (they are needed anyway
        for forecasts near the start of a window).
    criterion
        ``aic`` (Akaike) or ``bic`` (Schwarz), summed over channels.
    """
    segments = _check(segments, max_order)
    moments = _ar_moments(segments, max_order)
    gram, cross, power, n = moments.gram, moments.cross, moments.power, moments.n
    coefs, intercepts, sds, scores = [], [], [], []
    for q in range(1, max_order + 1):
        idx = [*range(q), max_order]
        sub = gram[:, idx][:, :, idx]
        w = np.linalg.solve(sub, cross[:, idx][..., None])[..., 0]  # (C, q + 1)
        residual = power - 2 * (w * cross[:, idx]).sum(-1) + np.einsum("ck,ckl,cl->c", w, sub, w)
        var = np.maximum(residual / n, 1e-300)
        coefs.append(w[:, :q])
        intercepts.append(w[:, q])
        sds.append(np.sqrt(var))
        penalty = 2.0 if criterion == "aic" else np.log(n)
        scores.append(float((n * np.log(var) + penalty * (q + 1)).sum()))
    order = int(np.argmin(scores)) + 1
    return LinearForecaster(
        "ar",
        order,
        coefs[:order],
        intercepts[:order],
        sds[:order],
        np.diag(sds[order - 1] ** 2),
        {"criterion": criterion, "max_order": max_order, "scores": scores},
    )


def _solve_var(gram: np.ndarray, cross: np.ndarray, q: int, c: int, ridge: float) -> np.ndarray:
    """Ridge solution ``(q * C + 1, C)`` of the order-``q`` block of a lag-major Gram matrix."""
    idx = _block(q, c, gram.shape[0])
    sub = gram[np.ix_(idx, idx)]
    scale = float(np.mean(np.diag(sub)[:-1]))
    penalty = np.diag(np.r_[np.full(q * c, ridge * scale), 0.0])
    return np.linalg.solve(sub + penalty, cross[idx])


def _block(q: int, c: int, size: int) -> list[int]:
    """Rows of the order-``q`` block of a lag-major design of ``size`` columns (with the
    intercept last)."""
    return [*range(q * c), size - 1]


def _residual_power(
    moments: _Moments, w: np.ndarray, q: int, c: int, full: bool = False
) -> np.ndarray:
    """Summed squared residuals of the order-``q`` weights ``w`` on the data of ``moments``:
    ``(C,)``, or the ``(C, C)`` cross products with ``full``."""
    idx = _block(q, c, moments.gram.shape[0])
    cross = moments.cross[idx]
    product = moments.power - w.T @ cross - cross.T @ w + w.T @ moments.gram[np.ix_(idx, idx)] @ w
    return product if full else np.maximum(np.diag(product), 1e-300)


def fit_var(
    segments: np.ndarray,
    orders: Sequence[int] = VAR_ORDERS,
    ridges: Sequence[float] = RIDGES,
    holdout: float = 0.2,
    seed: int = 0,
) -> LinearForecaster:
    """Fit a ridge VAR model, choosing order and ridge on held-out training segments.

    Parameters
    ----------
    segments
        ``(S, C, L)`` training segments (at least 2 of them, to hold some out).
    orders, ridges
        Candidate orders and relative ridge strengths (times the mean diagonal of the
        features' Gram matrix, so they do not depend on the data's units).
    holdout
        Fraction of segments used to choose; the final model is refitted on all.
    seed
        Which segments are held out.
    """
    max_order = max(q for q in orders if q < np.shape(segments)[-1] - 1)
    segments = _check(segments, max_order)
    s, c, _ = segments.shape
    orders = sorted(q for q in orders if q <= max_order)
    order_of = np.random.default_rng(seed).permutation(s)
    n_held = max(1, int(round(s * holdout))) if s > 1 else 0
    held, kept = order_of[:n_held], order_of[n_held:] if n_held < s else order_of
    fit = _var_moments(segments[kept], max_order)
    val = _var_moments(segments[held], max_order) if n_held else fit
    table = []
    for q in orders:
        for ridge in ridges:
            w = _solve_var(fit.gram, fit.cross, q, c, ridge)
            sd = np.sqrt(_residual_power(fit, w, q, c) / fit.n)
            mean_square = _residual_power(val, w, q, c) / val.n
            nll = float(np.mean(0.5 * mean_square / sd**2 + np.log(sd)) + 0.5 * np.log(2 * np.pi))
            table.append((nll, q, ridge))
    best_nll, order, ridge = min(table)
    every = fit + val if n_held and n_held < s else fit
    coefs, intercepts, sds = [], [], []
    for q in range(1, order + 1):
        w = _solve_var(every.gram, every.cross, q, c, ridge)
        coefs.append(w[:-1].T)
        intercepts.append(w[-1])
        sds.append(np.sqrt(_residual_power(every, w, q, c) / every.n))
    cov = _residual_power(every, w, order, c, full=True) / every.n
    return LinearForecaster(
        "var",
        order,
        coefs,
        intercepts,
        sds,
        np.atleast_2d(cov),
        {
            "criterion": "held-out Gaussian NLL per sample",
            "holdout_segments": int(n_held),
            "ridge": float(ridge),
            "heldout_nll": float(best_nll),
            "tried": [{"order": q, "ridge": r, "nll": v} for v, q, r in table],
        },
    )
