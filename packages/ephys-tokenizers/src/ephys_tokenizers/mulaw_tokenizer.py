"""The mu-law tokenizer: sample-wise mu-law codes with a persisted amplitude scale.

Works on numpy arrays and torch tensors (returning the same kind); torch is never imported by
this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ephys_core.components import Component, ComponentConfig
from ephys_tokenizers import mulaw

__all__ = ["MuLawTokenizer"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


class MuLawTokenizer(Component):
    """Mu-law companding of every sample to one of ``mu + 1`` codes, and back.

    ``encode`` divides the signal by ``amplitude`` (values beyond +/- ``amplitude`` are clipped
    to the extreme codes) and compresses it with mu-law; ``decode`` expands the codes and
    multiplies by ``amplitude``, so decoded signals are in the units given to ``encode``.
    Shapes are kept: ``(..., C, T)`` signals give ``(..., C, T)`` codes. numpy input gives
    the smallest unsigned integer dtype (uint8 for ``mu = 255``), torch input int64; decoded
    signals are float32. Build it from a prepared dataset's stored transforms with
    :meth:`from_transforms`, or from data with :meth:`from_signal`.
    """

    class Config(ComponentConfig):
        mu: int = Field(255, ge=1, le=65535, description="Codes are 0..mu (mu + 1 levels).")
        amplitude: float = Field(
            1.0,
            gt=0,
            description="Signal amplitude mapped to the extreme codes, in the units of the "
            "signal given to encode (e.g. 3.2e-12 for tesla, 1.0 for normalised data).",
        )

    causal: ClassVar[bool] = True
    #: each code depends on its own sample only (long signals may be encoded in blocks)
    samplewise: ClassVar[bool] = True
    time_stride: ClassVar[int] = 1
    requires_fit: ClassVar[bool] = False

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or self.Config()

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> Config:
        return cls.Config(mu=255, amplitude=5e-12)

    @property
    def vocab_size(self) -> int:
        """Number of codes, ``mu + 1``."""
        return self.config.mu + 1

    @property
    def roundtrip_tolerance(self) -> float:
        """Bound on the relative L2 round-trip error: ``((1 + mu)^(1/mu) - 1) (1 + 4/mu)``.

        0.0223 for ``mu = 255``. A code spans a factor ``(1 + mu)^(1/mu)`` in ``|x| + 1/mu``
        (``x`` in units of ``amplitude``), so each sample is off by at most
        ``((1 + mu)^(1/mu) - 1) (|x| + 1/mu)``; the bound follows for signals within
        +/- ``amplitude`` whose RMS is at least ``amplitude / 4`` (like :meth:`example_input`).
        Clipped or much smaller signals have larger relative errors.
        """
        mu = self.config.mu
        return math.expm1(math.log1p(mu) / mu) * (1 + 4 / mu)

    def encode(self, signal: Any) -> Any:
        """``(..., C, T)`` signal in the units of ``amplitude`` -> codes in ``[0, mu]``."""
        if not _is_torch(signal):
            signal = np.asarray(signal, dtype=np.float64)
        return mulaw.encode(signal / self.config.amplitude, self.config.mu)

    def decode(self, codes: Any) -> Any:
        """Codes -> float32 signal in the units given to :meth:`encode`."""
        values = mulaw.decode(codes, self.config.mu)
        if _is_torch(values):
            return values * self.config.amplitude
        return (values.astype(np.float64) * self.config.amplitude).astype(np.float32)

    def bin_edges(self) -> np.ndarray:
        """``(mu + 2,)``: the signal values (in the units given to :meth:`encode`) separating
        the codes, from -inf to +inf."""
        return mulaw.bin_edges(self.config.mu) * self.config.amplitude

    def example_input(self, batch_size: int = 2) -> np.ndarray:
        """Oscillations plus noise, 4 channels x 256 samples, within +/- 0.8 ``amplitude``."""
        rng = np.random.default_rng(0)
        t = np.arange(256) / 256.0
        freqs = rng.uniform(2.0, 30.0, size=(batch_size, 4, 1))
        phases = rng.uniform(0, 2 * np.pi, size=(batch_size, 4, 1))
        x = 0.5 * np.sin(2 * np.pi * freqs * t + phases) + 0.1 * rng.standard_normal(
            (batch_size, 4, 256)
        )
        x = np.clip(x, -0.8, 0.8) * self.config.amplitude
        return x.astype(np.float32)

    # -- construction from data -----------------------------------------------------------

    @classmethod
    def from_transforms(cls, transforms: Iterable[Mapping[str, Any]]) -> MuLawTokenizer:
        """The tokenizer that decodes data prepared with the ``mulaw`` preprocessing stage.

        Parameters
        ----------
        transforms
            The transforms a prepared dataset stores, in order, e.g.
            ``[{"kind": "normalize", ...}, {"kind": "mulaw", "mu": 255, "amplitude": 3.2}]``.
            The last ``mulaw`` entry is used; decoded values are then in the units the
            stage received (undo earlier transforms such as ``normalize`` separately).
        """
        transforms = list(transforms)
        entries = [dict(t) for t in transforms if t.get("kind") == "mulaw"]
        if not entries:
            kinds = [t.get("kind") for t in transforms]
            raise ValueError(
                f"no mu-law transform among the stored transforms {kinds}; the data was not "
                "prepared with the 'mulaw' stage"
            )
        entry = entries[-1]
        missing = {"mu", "amplitude"} - set(entry)
        if missing:
            raise ValueError(f"the mu-law transform lacks {sorted(missing)}: {entry}")
        return cls(cls.Config(mu=int(entry["mu"]), amplitude=float(entry["amplitude"])))

    @classmethod
    def from_signal(cls, signal: Any, mu: int = 255) -> MuLawTokenizer:
        """A tokenizer whose ``amplitude`` is the largest absolute value of ``signal``."""
        values = signal.detach().cpu().numpy() if _is_torch(signal) else np.asarray(signal)
        peak = float(np.abs(values).max()) if values.size else 0.0
        if not peak > 0:
            raise ValueError("cannot scale a mu-law tokenizer to an all-zero (or empty) signal")
        return cls(cls.Config(mu=mu, amplitude=peak))
