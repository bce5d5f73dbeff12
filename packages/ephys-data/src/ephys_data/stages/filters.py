"""Frequency-domain stages: band-pass and notch filters, resampling."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages._mne import add_step, mne_quiet
from ephys_data.stages.base import Stage

__all__ = ["BandPass", "Notch", "Resample", "resample_labels"]

logger = get_logger(__name__)

Phase = Literal["zero", "minimum"]


def _mne_phase(method: str, phase: str) -> str:
    """MNE's name for ``phase``: causal IIR filtering is called ``forward`` there."""
    if method == "iir":
        return "forward" if phase == "minimum" else "zero"
    return phase


class BandPass(Stage):
    """Band-pass (or high-pass, or low-pass) filter every data channel.

    A FIR (``firwin`` design, automatic transition bands) or Butterworth IIR filter, applied
    with zero phase (non-causal, no delay) or minimum phase (causal: the output at ``t``
    depends only on samples up to ``t``; MOUS and Omega pipelines used this). Leave ``l_freq``
    or ``h_freq`` null for a low-pass or high-pass filter.
    """

    class Config(ComponentConfig):
        l_freq: float | None = Field(
            0.5, gt=0, description="Lower pass-band edge in Hz; null for a low-pass filter."
        )
        h_freq: float | None = Field(
            40.0, gt=0, description="Upper pass-band edge in Hz; null for a high-pass filter."
        )
        method: Literal["fir", "iir"] = Field("fir", description="`fir` or `iir` (Butterworth).")
        phase: Phase = Field(
            "zero", description="`zero` (non-causal, no delay) or `minimum` (causal)."
        )
        iir_order: int = Field(4, ge=1, le=16, description="Order of the IIR filter.")

        @model_validator(mode="after")
        def _band(self) -> BandPass.Config:
            if self.l_freq is None and self.h_freq is None:
                raise ValueError("set l_freq, h_freq or both")
            if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
                raise ValueError(f"l_freq ({self.l_freq}) must be below h_freq ({self.h_freq})")
            return self

    def apply(self, recording: Recording) -> Recording:
        cfg = self.config
        nyquist = recording.sfreq / 2
        for edge in (cfg.l_freq, cfg.h_freq):
            if edge is not None and edge >= nyquist:
                raise RecordingError(
                    f"{recording.name}: band-pass edge {edge} Hz is not below the Nyquist "
                    f"frequency ({nyquist} Hz at {recording.sfreq} Hz); lower it or filter "
                    "before resampling"
                )
        kwargs: dict[str, Any] = {"method": cfg.method, "phase": _mne_phase(cfg.method, cfg.phase)}
        if cfg.method == "iir":
            kwargs["iir_params"] = {"order": cfg.iir_order, "ftype": "butter"}
        else:
            kwargs["fir_design"] = "firwin"
        with mne_quiet(recording.name, logger):
            raw = recording.raw.copy()
            raw.filter(cfg.l_freq, cfg.h_freq, **kwargs)
            out = recording.with_raw(raw)
        return add_step(out, "bandpass", **cfg.model_dump())


class Notch(Stage):
    """Remove power-line noise with notch filters at given frequencies or line harmonics.

    Either list ``freqs`` explicitly or give ``line_freq`` (50 Hz in Europe, 60 Hz in North
    America; ``auto`` reads it from the file) to notch it and every harmonic below the Nyquist
    frequency. Frequencies at or above Nyquist are skipped with a warning.
    """

    class Config(ComponentConfig):
        freqs: list[float] | None = Field(
            None, description="Frequencies to remove (Hz); null = `line_freq` and harmonics."
        )
        line_freq: float | Literal["auto"] = Field(
            50.0, description="Power-line frequency in Hz, or `auto` for the file's value."
        )
        harmonics: bool = Field(
            True, description="With `line_freq`, also remove its harmonics below Nyquist."
        )
        method: Literal["fir", "iir", "spectrum_fit"] = Field(
            "fir", description="`fir`, `iir` or `spectrum_fit` (sinusoid regression)."
        )
        phase: Phase = Field(
            "zero", description="`zero` (non-causal) or `minimum` (causal) for fir/iir."
        )
        notch_widths: float | None = Field(
            None, gt=0, description="Width of each notch in Hz; null = frequency / 200."
        )

        @model_validator(mode="after")
        def _positive(self) -> Notch.Config:
            if self.freqs is not None and (not self.freqs or min(self.freqs) <= 0):
                raise ValueError("freqs must be a non-empty list of positive frequencies")
            if isinstance(self.line_freq, float) and self.line_freq <= 0:
                raise ValueError("line_freq must be positive")
            return self

    def frequencies(self, sfreq: float, line_freq: float | None = None) -> list[float]:
        """The frequencies notched for a recording at ``sfreq`` Hz (all below Nyquist)."""
        cfg = self.config
        nyquist = sfreq / 2
        if cfg.freqs is not None:
            wanted = list(cfg.freqs)
        else:
            base = line_freq if cfg.line_freq == "auto" else float(cfg.line_freq)
            if base is None:
                return []
            count = int(np.ceil(nyquist / base)) if cfg.harmonics else 1
            wanted = [base * k for k in range(1, count + 1)]
        return [f for f in wanted if f < nyquist]

    def apply(self, recording: Recording) -> Recording:
        cfg = self.config
        line = None
        if cfg.freqs is None and cfg.line_freq == "auto":
            line = recording.raw.info.get("line_freq")
            if not line:
                raise RecordingError(
                    f"{recording.name}: the file does not record its power-line frequency; "
                    "set `line_freq` (50 or 60) or `freqs` in `notch`"
                )
        freqs = self.frequencies(recording.sfreq, line)
        skipped = sorted(set(cfg.freqs or []) - set(freqs))
        if skipped:
            logger.warning(
                "%s: notch frequencies %s Hz are not below Nyquist (%g Hz); skipped",
                recording.name,
                skipped,
                recording.sfreq / 2,
            )
        if not freqs:
            logger.warning(
                "%s: no notch frequency below Nyquist (%g Hz); nothing to do",
                recording.name,
                recording.sfreq / 2,
            )
            return add_step(recording.replace(), "notch", freqs=[])
        kwargs: dict[str, Any] = {"method": cfg.method, "notch_widths": cfg.notch_widths}
        if cfg.method != "spectrum_fit":
            kwargs["phase"] = _mne_phase(cfg.method, cfg.phase)
        if cfg.method == "fir":
            kwargs["fir_design"] = "firwin"
        with mne_quiet(recording.name, logger):
            raw = recording.raw.copy()
            raw.notch_filter(np.asarray(freqs), **kwargs)
            out = recording.with_raw(raw)
        return add_step(out, "notch", freqs=freqs, method=cfg.method, phase=cfg.phase)


class Resample(Stage):
    """Change the sampling frequency, with an anti-aliasing filter.

    MNE-backed recordings use :meth:`mne.io.Raw.resample` (``fft`` or ``polyphase``);
    array-backed ones (e.g. parcel time courses) use polyphase filtering. A per-sample
    ``labels`` track is carried over by taking the nearest input sample, and annotations keep
    their times, so both stay aligned with the signal. Mu-law codes cannot be resampled.
    """

    class Config(ComponentConfig):
        sfreq: float = Field(100.0, gt=0, description="Target sampling frequency in Hz.")
        method: Literal["fft", "polyphase"] = Field(
            "fft", description="`fft` (MNE default) or `polyphase` (scipy.signal.resample_poly)."
        )

    requires: ClassVar[str] = "loaded"

    def output_sfreq(self, sfreq: float) -> float:
        """The configured target frequency."""
        return float(self.config.sfreq)

    def apply(self, recording: Recording) -> Recording:
        target = float(self.config.sfreq)
        if target == recording.sfreq:
            return add_step(recording.replace(), "resample", sfreq=target, unchanged=True)
        if recording.state == "mne":
            with mne_quiet(recording.name, logger):
                raw = recording.raw.copy()
                raw.resample(target, method=self.config.method)
                out = recording.with_raw(raw)
        else:
            out = recording.with_data(_resample_array(recording, target), sfreq=target)
        if recording.labels is not None:
            out = out.replace(
                labels=resample_labels(recording.labels, recording.sfreq, target, out.n_times)
            )
        return add_step(
            out, "resample", sfreq_in=recording.sfreq, sfreq=target, method=self.config.method
        )


def _resample_array(recording: Recording, target: float) -> np.ndarray:
    from scipy.signal import resample_poly

    if any(t.get("kind") == "mulaw" for t in recording.transforms) or np.issubdtype(
        recording.data.dtype, np.integer
    ):
        raise RecordingError(
            f"{recording.name}: cannot resample quantised (mu-law) codes; put `resample` "
            "before `mulaw`"
        )
    ratio = Fraction(target).limit_denominator(10_000) / Fraction(
        recording.sfreq
    ).limit_denominator(10_000)
    data = resample_poly(recording.data, ratio.numerator, ratio.denominator, axis=1, padtype="line")
    return data.astype(recording.data.dtype, copy=False)


def resample_labels(
    labels: np.ndarray, sfreq_in: float, sfreq_out: float, n_out: int
) -> np.ndarray:
    """A per-sample label track at ``sfreq_out``: each output sample takes the nearest input."""
    labels = np.asarray(labels)
    index = np.floor(np.arange(n_out) * (sfreq_in / sfreq_out) + 0.5).astype(np.int64)
    return labels[np.clip(index, 0, len(labels) - 1)].copy()
