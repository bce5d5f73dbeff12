"""Fixed-length windows over sessions, as compact index arrays.

A window of ``length`` samples starts every ``step = length - overlap`` samples inside each
session; windows never cross from one session to the next but do span any chunking of the
session on disk (sessions are stored contiguously). Windows touching a sample marked bad (the
non-finite samples, with ``non_finite: skip``) can be left out; the index counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ephys_core.errors import ConfigError

__all__ = ["WindowIndex", "window_samples"]


def window_samples(window_seconds: float, overlap_seconds: float, sfreq: float) -> tuple[int, int]:
    """Window length and step in samples, with clear errors for impossible values."""
    length = int(round(window_seconds * sfreq))
    overlap = int(round(overlap_seconds * sfreq))
    if length < 2:
        raise ConfigError(
            f"window_seconds: {window_seconds} s at {sfreq} Hz is {length} sample(s); need >= 2"
        )
    if not 0 <= overlap < length:
        raise ConfigError(
            f"overlap_seconds: must be >= 0 and shorter than the window ({window_seconds} s)"
        )
    return length, length - overlap


@dataclass(frozen=True)
class WindowIndex:
    """Windows of a list of sessions.

    Attributes
    ----------
    session
        ``(N,)`` index into the session list of each window.
    start
        ``(N,)`` first sample of each window.
    length
        Samples read per window.
    dropped
        Windows left out because they touch a bad sample.
    """

    session: np.ndarray
    start: np.ndarray
    length: int
    dropped: int = 0

    @classmethod
    def build(
        cls,
        n_times: Sequence[int],
        length: int,
        step: int,
        bad: Sequence[np.ndarray | None] | None = None,
    ) -> WindowIndex:
        """Windows of ``length`` samples every ``step`` samples in sessions of ``n_times``.

        ``bad``, if given, holds for each session ``None`` or a ``(n,)`` bool array of samples
        no window may touch.
        """
        sessions, starts = [], []
        dropped = 0
        for i, n in enumerate(n_times):
            if n < length:
                continue
            s = np.arange(0, n - length + 1, step, dtype=np.int64)
            mask = bad[i] if bad is not None else None
            if mask is not None and mask.any():
                touched = np.concatenate([[0], np.cumsum(mask[:n], dtype=np.int64)])
                clean = touched[s + length] == touched[s]
                dropped += int(len(s) - clean.sum())
                s = s[clean]
            starts.append(s)
            sessions.append(np.full(len(s), i, dtype=np.int32))
        if not starts:
            return cls(np.zeros(0, np.int32), np.zeros(0, np.int64), length, dropped)
        return cls(np.concatenate(sessions), np.concatenate(starts), length, dropped)

    def __len__(self) -> int:
        return len(self.start)
