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


def _lagged(segments: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Lagged samples ``(n, p, C)`` (lag 1 first) and targets ``(n, C)`` of every segment."""
    s, c, length = segments.shape
    lags = np.stack([segments[:, :, p - 1 - k : length - 1 - k] for k in range(p)], axis=1)
    x = lags.transpose(0, 3, 1, 2).reshape(-1, p, c)  # (S * (L - p), p, C)
    y = segments[:, :, p:].transpose(0, 2, 1).reshape(-1, c)
    return x, y


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
    x, y = _lagged(segments, max_order)
    n, _, c = x.shape
    # per channel: design [lags 1..p, 1] and its Gram matrix, computed once for the largest p
    design = np.concatenate([x.transpose(2, 0, 1), np.ones((c, n, 1))], axis=-1)  # (C, n, p+1)
    gram = np.einsum("cnk,cnl->ckl", design, design)
    cross = np.einsum("cnk,nc->ck", design, y)
    power = (y**2).sum(axis=0)
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


def _gaussian_nll(residual: np.ndarray, sd: np.ndarray) -> float:
    return float(np.mean(0.5 * (residual / sd) ** 2 + np.log(sd) + 0.5 * np.log(2 * np.pi)))


def _solve_var(gram: np.ndarray, cross: np.ndarray, q: int, c: int, ridge: float) -> np.ndarray:
    """Ridge solution ``(q * C + 1, C)`` of the order-``q`` block of a lag-major Gram matrix."""
    idx = [*range(q * c), gram.shape[0] - 1]
    sub = gram[np.ix_(idx, idx)]
    scale = float(np.mean(np.diag(sub)[:-1]))
    penalty = np.diag(np.r_[np.full(q * c, ridge * scale), 0.0])
    return np.linalg.solve(sub + penalty, cross[idx])


def _features(x: np.ndarray, q: int) -> np.ndarray:
    """``(n, q * C + 1)`` lag-major features with the intercept column."""
    return np.concatenate([x[:, :q].reshape(len(x), -1), np.ones((len(x), 1))], axis=1)


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
    x_fit, y_fit = _lagged(segments[kept], max_order)
    x_val, y_val = _lagged(segments[held], max_order) if n_held else (x_fit, y_fit)
    f_fit = _features(x_fit, max_order)
    gram, cross = f_fit.T @ f_fit, f_fit.T @ y_fit
    table = []
    for q in orders:
        f_val = _features(x_val, q)
        for ridge in ridges:
            w = _solve_var(gram, cross, q, c, ridge)
            sd = np.std(y_fit - _features(x_fit, q) @ w, axis=0)
            table.append((_gaussian_nll(y_val - f_val @ w, sd), q, ridge))
    best_nll, order, ridge = min(table)
    x_all, y_all = _lagged(segments, order)
    f_all = _features(x_all, order)
    gram, cross = f_all.T @ f_all, f_all.T @ y_all
    coefs, intercepts, sds = [], [], []
    for q in range(1, order + 1):
        w = _solve_var(gram, cross, q, c, ridge)
        residual = y_all - f_all[:, [*range(q * c), f_all.shape[1] - 1]] @ w
        coefs.append(w[:-1].T)
        intercepts.append(w[-1])
        sds.append(residual.std(axis=0))
    cov = np.cov(residual, rowvar=False)
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
