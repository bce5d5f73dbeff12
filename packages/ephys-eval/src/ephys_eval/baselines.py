"""The forecasters every model is scored beside, on the same windows and contexts.

Classical (fitted by least squares on the training split, see :mod:`ephys_eval.linear`):

``ar``
    Per-channel linear autoregression AR(p), the order chosen by AIC.
``var``
    Ridge vector autoregression VAR(p) over all channels, order and ridge chosen on held-out
    training segments.

Naive:

``persistence``
    The next sample equals the current one, with a Gaussian spread fitted to the training
    split's one-step changes (per channel). Rollouts hold the last value.
``token_frequency``
    Ignores the past: each channel's code distribution in the training split (add-one
    smoothed); rollouts sample from it.

A token model predicts a distribution over codes; the continuous forecasters predict a
Gaussian in signal units. They are put in the model's currency by integrating the Gaussian
over each code's bin (:func:`gaussian_code_nll`), so the cross-entropies are directly
comparable. The baselines see what the model sees: the codes, decoded back to signal, within
the same window (no history from before it). Their rollouts are drawn in signal units with
their residual noise and quantised through the same codec as the data, then decoded, as the
model's are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.special import ndtr

from ephys_eval.linear import LinearForecaster

__all__ = [
    "Baseline",
    "GaussianBaseline",
    "Persistence",
    "TokenFrequency",
    "TokenStatistics",
    "gaussian_code_argmax",
    "gaussian_code_nll",
]

#: smallest probability a code is given, so a very wrong forecast costs at most ~690 nats
_FLOOR = 1e-300


def _mass(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``Phi(hi) - Phi(lo)`` computed on the side where it does not cancel to zero."""
    upper = lo > 0  # both standardised edges positive: use the upper tail
    return np.where(upper, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))


def _edges_per_channel(edges: Any, n: int, c: int) -> np.ndarray:
    """Bin edges as ``(N, C, V + 1)`` from ``(V + 1,)``, ``(N, V + 1)`` or ``(N, C, V + 1)``."""
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim == 2:
        edges = edges[:, None, :]
    return np.broadcast_to(edges, (n, c, edges.shape[-1]))


def gaussian_code_nll(
    mean: np.ndarray, sd: np.ndarray, codes: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """Negative log-probability of ``codes`` under Gaussians integrated over the code bins.

    Parameters
    ----------
    mean, sd
        ``(N, C, T)`` Gaussian forecasts in signal units (``sd`` broadcastable).
    codes
        ``(N, C, T)`` the codes that occurred.
    edges
        Bin edges in signal units: ``(V + 1,)`` for all, ``(N, V + 1)`` per segment (mu-law
        with a session's amplitude) or ``(N, C, V + 1)`` per segment and channel (quantile).

    Returns
    -------
    np.ndarray
        ``(N, C, T)`` nats.
    """
    edges = _edges_per_channel(edges, codes.shape[0], codes.shape[1])
    row = np.arange(codes.shape[0])[:, None, None]
    chan = np.arange(codes.shape[1])[None, :, None]
    lo = (edges[row, chan, codes] - mean) / sd
    hi = (edges[row, chan, codes + 1] - mean) / sd
    return -np.log(np.maximum(_mass(lo, hi), _FLOOR))


def gaussian_code_argmax(
    mean: np.ndarray, sd: np.ndarray, edges: np.ndarray, reach: int = 4
) -> np.ndarray:
    """The most probable code of each Gaussian forecast ``(N, C, T)``.

    Bins are not equally wide (mu-law bins widen away from zero), so the bin that holds the
    mean is not always the most probable; the ``reach`` bins on either side are compared too.
    """
    edges = _edges_per_channel(edges, mean.shape[0], mean.shape[1])
    n_codes = edges.shape[-1] - 1
    inner = edges[..., 1:-1]
    centre = np.empty(mean.shape, dtype=np.int64)
    for i in range(mean.shape[0]):
        for c in range(mean.shape[1]):
            centre[i, c] = np.searchsorted(inner[i, c], mean[i, c])
    row = np.arange(mean.shape[0])[:, None, None]
    chan = np.arange(mean.shape[1])[None, :, None]
    best, best_mass = centre, np.full(mean.shape, -1.0)
    for offset in range(-reach, reach + 1):
        k = np.clip(centre + offset, 0, n_codes - 1)
        lo, hi = edges[row, chan, k], edges[row, chan, k + 1]
        mass = _mass((lo - mean) / sd, (hi - mean) / sd)
        better = mass > best_mass
        best = np.where(better, k, best)
        best_mass = np.where(better, mass, best_mass)
    return best


class TokenStatistics:
    """Per-channel code frequencies of a training split (add-one smoothed).

    Parameters
    ----------
    vocab_size
        Number of codes.
    n_channels
        Channels of the items.
    """

    def __init__(self, vocab_size: int, n_channels: int) -> None:
        self.vocab_size = vocab_size
        self.counts = np.ones((n_channels, vocab_size))

    def update(self, tokens: np.ndarray) -> None:
        """Count a ``(B, C, T)`` batch of training codes."""
        for c in range(tokens.shape[1]):
            self.counts[c] += np.bincount(tokens[:, c].ravel(), minlength=self.vocab_size)

    @classmethod
    def from_batches(
        cls, batches: Iterable[np.ndarray], vocab_size: int, n_channels: int
    ) -> TokenStatistics:
        """Statistics of an iterable of ``(B, C, T)`` code batches."""
        stats = cls(vocab_size, n_channels)
        for batch in batches:
            stats.update(batch)
        return stats

    @property
    def probabilities(self) -> np.ndarray:
        """``(C, V)`` code distribution of each channel."""
        return self.counts / self.counts.sum(axis=1, keepdims=True)


@dataclass
class Scores:
    """Teacher-forced scores of one forecaster: ``(N, C, T)`` nats and hits."""

    nll: np.ndarray
    correct: np.ndarray


class Baseline(Protocol):
    """A forecaster the model is compared with."""

    name: str

    def teacher_forced(self, codes: np.ndarray, signal: np.ndarray, edges: Any) -> Scores:
        """Scores of forecasting ``codes[..., 1:]`` from the window up to each step.

        ``codes`` and ``signal`` (the codes decoded) are ``(N, C, T + 1)``; ``edges`` are the
        segments' code bin edges ``(N, V + 1)`` or ``(N, C, V + 1)``.
        """
        ...

    def rollout(
        self, codes: np.ndarray, signal: np.ndarray, n_steps: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Continue the contexts (``(N, C, T)`` codes and signal) by ``n_steps``: codes if the
        baseline draws codes, else a signal in the data's units (quantised by the caller)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts about the fitted baseline."""
        ...


class TokenFrequency:
    """Each channel's training code distribution, whatever the past."""

    name = "token_frequency"
    draws_codes = True

    def __init__(self, stats: TokenStatistics) -> None:
        self.stats = stats

    def teacher_forced(self, codes: np.ndarray, signal: np.ndarray, edges: Any) -> Scores:
        probs = self.stats.probabilities
        target = codes[..., 1:]
        channel = np.arange(target.shape[1])[None, :, None]
        nll = -np.log(probs[channel, target])
        correct = probs.argmax(axis=1)[None, :, None] == target
        return Scores(nll, correct)

    def rollout(
        self, codes: np.ndarray, signal: np.ndarray, n_steps: int, rng: np.random.Generator
    ) -> np.ndarray:
        n, c, _ = codes.shape
        probs = self.stats.probabilities
        out = np.empty((n, c, n_steps), dtype=np.int64)
        for ch in range(c):
            out[:, ch] = rng.choice(self.stats.vocab_size, size=(n, n_steps), p=probs[ch])
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "token frequency", "smoothing": "add-one"}


class Persistence:
    """The next sample is the current one, give or take the training split's step spread."""

    name = "persistence"

    def __init__(self, signals: np.ndarray) -> None:
        steps = np.diff(np.asarray(signals, dtype=np.float64), axis=-1)
        self.sd = np.maximum(
            steps.transpose(1, 0, 2).reshape(steps.shape[1], -1).std(axis=1), 1e-12
        )

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(x, dtype=np.float64), np.broadcast_to(self.sd[None, :, None], x.shape)

    def simulate(self, context: np.ndarray, n_steps: int, rng: np.random.Generator) -> np.ndarray:
        return np.repeat(np.asarray(context)[..., -1:], n_steps, axis=-1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "persistence", "step_sd": [float(v) for v in self.sd]}


class GaussianBaseline:
    """A continuous forecaster (linear or persistence) put in the codes' currency."""

    draws_codes = False

    def __init__(self, name: str, model: LinearForecaster | Persistence) -> None:
        self.name, self.model = name, model

    def teacher_forced(self, codes: np.ndarray, signal: np.ndarray, edges: Any) -> Scores:
        mean, sd = self.model.predict(signal[..., :-1])
        target = codes[..., 1:]
        nll = gaussian_code_nll(mean, sd, target, edges)
        correct = gaussian_code_argmax(mean, sd, edges) == target
        return Scores(nll, correct)

    def rollout(
        self, codes: np.ndarray, signal: np.ndarray, n_steps: int, rng: np.random.Generator
    ) -> np.ndarray:
        return self.model.simulate(signal, n_steps, rng)

    def describe(self) -> dict[str, Any]:
        return self.model.to_dict()
