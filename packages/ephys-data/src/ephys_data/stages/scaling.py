"""Amplitude stages: per-channel normalisation, clipping and mu-law quantisation.

Each stage records its parameters in ``Recording.transforms`` so that prepared samples can be
mapped back to physical units (:func:`ephys_data.recording.to_physical`). Their output is an
array-backed recording (float32, or the smallest unsigned integer type for mu-law codes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ephys_core.components import ComponentConfig
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.base import Stage
from ephys_tokenizers import mulaw

__all__ = ["Clip", "MuLaw", "Normalize", "invert_transform"]


class Normalize(Stage):
    """Scale every channel by statistics over the whole session.

    ``robust`` subtracts the median and divides by the interquartile range; ``standard``
    subtracts the mean and divides by the standard deviation. Channels with zero spread (flat or
    zeroed bad channels) are only centred. Centres and scales are stored for inversion.
    """

    class Config(ComponentConfig):
        method: Literal["robust", "standard"] = Field(
            "robust", description="`robust` (median/IQR) or `standard` (mean/std)."
        )

    requires: ClassVar[str] = "loaded"

    def apply(self, recording: Recording) -> Recording:
        x = recording.get_data().astype(np.float64, copy=False)
        if self.config.method == "robust":
            q25, center, q75 = np.percentile(x, [25, 50, 75], axis=1)
            scale = q75 - q25
        else:
            center, scale = x.mean(axis=1), x.std(axis=1)
        scale = np.where(scale > 0, scale, 1.0)
        out = ((x - center[:, None]) / scale[:, None]).astype(np.float32)
        return recording.with_transform(
            out,
            {
                "kind": "normalize",
                "method": self.config.method,
                "center": center.tolist(),
                "scale": scale.tolist(),
            },
        )


class Clip(Stage):
    """Clip every channel to its mean +/- ``k`` standard deviations (removes rare spikes).

    Clipping cannot be undone; the bounds and the fraction of clipped samples are recorded.
    """

    class Config(ComponentConfig):
        k: float = Field(5.0, gt=0, description="Bound in standard deviations of each channel.")

    requires: ClassVar[str] = "loaded"

    def apply(self, recording: Recording) -> Recording:
        x = recording.get_data()
        mean, std = x.mean(axis=1, keepdims=True), x.std(axis=1, keepdims=True)
        low, high = mean - self.config.k * std, mean + self.config.k * std
        out = np.clip(x, low, high).astype(np.float32)
        clipped = float(np.mean((x < low) | (x > high))) if x.size else 0.0
        return recording.with_transform(
            out,
            {
                "kind": "clip",
                "k": self.config.k,
                "low": low[:, 0].tolist(),
                "high": high[:, 0].tolist(),
                "fraction_clipped": clipped,
            },
        )


class MuLaw(Stage):
    """Quantise amplitudes to ``mu + 1`` integer codes with mu-law companding.

    Samples are divided by ``amplitude`` (by default the largest absolute value in the session)
    before encoding; values beyond it are clipped to the extreme codes. ``mu`` and the amplitude
    are stored, so ``decode(codes) * amplitude`` returns the pre-quantisation values.
    """

    class Config(ComponentConfig):
        mu: int = Field(255, ge=1, le=65535, description="Codes are 0..mu (mu + 1 levels).")
        amplitude: float | Literal["max"] = Field(
            "max", description="Amplitude mapped to the extreme codes; `max` = session max |x|."
        )

    requires: ClassVar[str] = "loaded"

    def apply(self, recording: Recording) -> Recording:
        x = recording.get_data()
        if self.config.amplitude == "max":
            amplitude = float(np.abs(x).max()) if x.size else 1.0
        else:
            amplitude = float(self.config.amplitude)
        if not amplitude > 0:
            raise RecordingError(f"{recording.name}: cannot mu-law encode an all-zero signal")
        codes = mulaw.encode(x / amplitude, self.config.mu)
        recon = mulaw.decode(codes, self.config.mu) * amplitude
        mse = float(np.mean((recon - x) ** 2)) if x.size else 0.0
        return recording.with_transform(
            codes,
            {
                "kind": "mulaw",
                "mu": self.config.mu,
                "amplitude": amplitude,
                "reconstruction_mse": mse,
            },
        )


def invert_transform(data: np.ndarray, transform: Mapping[str, Any]) -> np.ndarray:
    """Undo one recorded transform (clipping is the identity)."""
    kind = transform.get("kind")
    if kind == "mulaw":
        return mulaw.decode(data, int(transform["mu"])).astype(np.float64) * transform["amplitude"]
    if kind == "normalize":
        center = np.asarray(transform["center"])[:, None]
        scale = np.asarray(transform["scale"])[:, None]
        return np.asarray(data, dtype=np.float64) * scale + center
    if kind == "clip":
        return np.asarray(data)
    raise RecordingError(f"do not know how to invert a transform of kind {kind!r}")
