"""Naive forecasters every model must beat, scored on the same windows as the model.

``token_frequency``
    Ignores the past: predicts each channel's token distribution in the training split
    (teacher-forced) and samples from it (rollouts).
``repeat_last``
    Persistence: the next token equals the current one. Teacher-forced, it puts the
    probability that the token repeats (measured on the training split) on the current token
    and spreads the rest uniformly; in rollouts it holds the last context value.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["TokenStatistics"]


class TokenStatistics:
    """Per-channel token frequencies and the repeat probability of a training split.

    Parameters
    ----------
    vocab_size
        Number of codes.
    n_channels
        Channels of the items.
    """

    def __init__(self, vocab_size: int, n_channels: int) -> None:
        self.vocab_size = vocab_size
        self.counts = np.ones((n_channels, vocab_size))  # add-one smoothing
        self.repeats = 0
        self.pairs = 0

    def update(self, tokens: np.ndarray) -> None:
        """Count a ``(B, C, T)`` batch of training tokens."""
        for c in range(tokens.shape[1]):
            self.counts[c] += np.bincount(tokens[:, c].ravel(), minlength=self.vocab_size)
        self.repeats += int((tokens[..., 1:] == tokens[..., :-1]).sum())
        self.pairs += tokens[..., 1:].size

    @classmethod
    def from_batches(
        cls, batches: Iterable[np.ndarray], vocab_size: int, n_channels: int
    ) -> TokenStatistics:
        """Statistics of an iterable of ``(B, C, T)`` token batches."""
        stats = cls(vocab_size, n_channels)
        for batch in batches:
            stats.update(batch)
        return stats

    @property
    def probabilities(self) -> np.ndarray:
        """``(C, V)`` token distribution of each channel."""
        return self.counts / self.counts.sum(axis=1, keepdims=True)

    @property
    def repeat_probability(self) -> float:
        """How often a token equals the previous one."""
        return min(max(self.repeats / max(self.pairs, 1), 1e-6), 1 - 1e-6)

    def frequency_scores(self, inputs: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
        """Teacher-forced ``(cross-entropy, accuracy)`` of the token-frequency baseline."""
        probs = self.probabilities
        channel = np.arange(targets.shape[1])[None, :, None]
        nll = -np.log(probs[channel, targets]).mean()
        accuracy = (probs.argmax(axis=1)[None, :, None] == targets).mean()
        return float(nll), float(accuracy)

    def persistence_scores(self, inputs: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
        """Teacher-forced ``(cross-entropy, accuracy)`` of the repeat-last baseline."""
        p = self.repeat_probability
        same = inputs == targets
        other = (1 - p) / (self.vocab_size - 1)
        nll = -np.where(same, np.log(p), np.log(other)).mean()
        return float(nll), float(same.mean())

    def sample(self, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
        """``(B, C, T)`` tokens drawn independently from each channel's distribution."""
        n, c, t = shape
        probs = self.probabilities
        out = np.empty(shape, dtype=np.int64)
        for ch in range(c):
            out[:, ch] = rng.choice(self.vocab_size, size=(n, t), p=probs[ch])
        return out
