"""Amplitude stages: per-channel normalisation, clipping and mu-law quantisation.

Each stage records its parameters in ``Recording.transforms`` (the records of
:mod:`ephys_data.transforms`) so that prepared samples can be mapped back to physical units
(:func:`ephys_data.transforms.to_physical`). Their output is an array-backed recording
(float32, or the smallest unsigned integer type for mu-law codes).
"""

from __future__ import annotations

import warnings
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.base import Stage
from ephys_data.transforms import clip_record, mulaw_record, normalize_record
from ephys_tokenizers import mulaw

__all__ = ["FLAT_FLOOR", "RELATIVE_FLOOR", "Clip", "MuLaw", "Normalize", "flat_channels"]

logger = get_logger(__name__)

#: Standard deviation below which a channel in physical units carries no measured signal.
#: The quietest sensors in use are SQUID and OPM magnetometers, with a white noise floor of
#: about 2-15 fT/sqrt(Hz): over any band a model is trained on (>= 1 Hz wide) a working
#: magnetometer fluctuates by at least a few fT, so 1e-16 T (0.1 fT) is ten times below the
#: quietest real one. Planar gradiometers (MEGIN: about 3 fT/cm/sqrt(Hz) = 3e-13 T/m/sqrt(Hz))
#: get 1e-14 T/m, thirty times below theirs. EEG amplifiers have an input noise of about
#: 0.5-2 microvolt rms, so 1e-9 V (1 nV) is hundreds of times below it. What band-pass filtering
#: or resampling a constant leaves is float64 rounding residue, about 1e-16 of the constant,
#: far below all three for any physical offset.
FLAT_FLOOR: dict[str, float] = {"T": 1e-16, "T/m": 1e-14, "V": 1e-9}

#: A channel whose standard deviation is at most this fraction of the median of the channels of
#: its type and unit is flat too (for units without a floor, and for data no longer in physical
#: units). That is 120 dB below its neighbours: no working sensor of an array is a million times
#: quieter than the others, while the residue of filtering a constant is ~1e-16 of its value.
RELATIVE_FLOOR = 1e-6


def flat_channels(recording: Recording, x: np.ndarray) -> np.ndarray:
    """``(C,)`` bool: channels of ``x`` (the recording's samples) that carry no signal.

    A channel is flat when its standard deviation is zero, below :data:`FLAT_FLOOR` for its
    unit (only while the data are still in physical units, i.e. before any amplitude
    transform), or at most :data:`RELATIVE_FLOOR` times the median of the other channels of
    its type and unit. Channels holding NaN or inf are never called flat (their samples stay
    non-finite and are reported when the session is written).
    """
    std = x.std(axis=1) if x.shape[1] else np.zeros(x.shape[0])
    finite = np.isfinite(std)
    flat = finite & (std == 0)
    units = recording.units if len(recording.units) == x.shape[0] else ("",) * x.shape[0]
    types = recording.ch_types if len(recording.ch_types) == x.shape[0] else ("",) * x.shape[0]
    if not recording.transforms:  # still in physical units
        floors = np.array([FLAT_FLOOR.get(u, 0.0) for u in units])
        flat |= finite & (std < floors)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(types, units, strict=True)):
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        live = [i for i in members if finite[i] and not flat[i]]
        if len(live) < 2:
            continue
        reference = float(np.median(std[live]))
        for i in live:
            if std[i] <= RELATIVE_FLOOR * reference:
                flat[i] = True
    return flat


class Normalize(Stage):
    """Scale every channel by statistics over the whole session.

    ``robust`` subtracts the median and divides by the interquartile range (by the standard
    deviation where the interquartile range is zero); ``standard`` subtracts the mean and
    divides by the standard deviation. Flat channels (see :func:`flat_channels`: zero spread,
    a spread below the physical floor of their unit, or a million times below the median of
    their type) are never amplified: they are set to zero, keep scale 1 and are listed in the
    transform's ``flat``. A session whose channels are all flat fails. Centres and scales are
    stored for inversion.
    """

    class Config(ComponentConfig):
        method: Literal["robust", "standard"] = Field(
            "robust", description="`robust` (median/IQR) or `standard` (mean/std)."
        )

    requires: ClassVar[str] = "loaded"

    def _statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel centre and spread; NaN and inf samples are left out of them (they stay
        non-finite in the output and are counted when the session is written)."""
        robust = self.config.method == "robust"
        if not x.size or (np.isfinite(x.min()) and np.isfinite(x.max())):
            if robust:
                q25, center, q75 = np.percentile(x, [25, 50, 75], axis=1)
                return center, np.where(q75 - q25 > 0, q75 - q25, x.std(axis=1))
            return x.mean(axis=1), x.std(axis=1)
        x = np.where(np.isfinite(x), x, np.nan)
        with warnings.catch_warnings():  # channels without a finite sample: NaN statistics
            warnings.simplefilter("ignore", RuntimeWarning)
            if robust:
                q25, center, q75 = np.nanpercentile(x, [25, 50, 75], axis=1)
                return center, np.where(q75 - q25 > 0, q75 - q25, np.nanstd(x, axis=1))
            return np.nanmean(x, axis=1), np.nanstd(x, axis=1)

    def apply(self, recording: Recording) -> Recording:
        x = recording.get_data().astype(np.float64, copy=False)
        flat = flat_channels(recording, x)
        if x.shape[0] and flat.all():
            raise RecordingError(
                f"{recording.name}: every channel is flat (no channel's spread is above the "
                "floor of its unit or above a millionth of its neighbours'): the recording "
                "carries no signal. Check the file, or leave it out"
            )
        center, scale = self._statistics(x)
        scale = np.where(flat | ~(scale > 0), 1.0, scale)
        out = ((x - center[:, None]) / scale[:, None]).astype(np.float32)
        out[flat] = 0.0
        names = [recording.ch_names[i] for i in np.flatnonzero(flat)]
        if names:
            logger.warning(
                "%s: %d flat channel(s) set to zero instead of being amplified: %s",
                recording.name,
                len(names),
                ", ".join(names[:10]) + (", ..." if len(names) > 10 else ""),
            )
        return recording.with_transform(
            out, normalize_record(self.config.method, center, scale, flat=names)
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
            out, clip_record(self.config.k, low[:, 0], high[:, 0], clipped)
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
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise RecordingError(
                f"{recording.name}: {bad} sample(s) are NaN or infinite, and mu-law has no code "
                "for them; find the broken channels or segments (`bad_channels`, "
                "`bad_segments` with `zero: true`) before `mulaw`"
            )
        if self.config.amplitude == "max":
            amplitude = float(np.abs(x).max()) if x.size else 1.0
        else:
            amplitude = float(self.config.amplitude)
        if not amplitude > 0:
            raise RecordingError(f"{recording.name}: cannot mu-law encode an all-zero signal")
        codes = mulaw.encode(x / amplitude, self.config.mu)
        recon = mulaw.decode(codes, self.config.mu) * amplitude
        mse = float(np.mean((recon - x) ** 2)) if x.size else 0.0
        return recording.with_transform(codes, mulaw_record(self.config.mu, amplitude, mse))
