"""Amplitude transforms: the records scaling stages keep, and how to undo them.

Every change of amplitude a preprocessing stage makes is appended to ``Recording.transforms``
(and stored in each session's ``meta.json``) as a plain, JSON-ready dict with a ``kind`` and the
parameters needed to undo it:

``normalize``
    ``method`` (``robust`` or ``standard``) and per-channel ``center`` and ``scale``: prepared
    samples are ``(physical - center) / scale``. ``flat`` names the channels found flat: they
    are stored as zeros with scale 1, so inverting them gives back their constant ``center``.
``clip``
    ``k``, per-channel ``low`` and ``high`` bounds and ``fraction_clipped``. Clipping cannot be
    undone: inverting it is the identity (clipped samples stay at the bound).
``mulaw``
    ``mu`` and ``amplitude``: codes are ``mulaw.encode(x / amplitude, mu)``;
    ``reconstruction_mse`` is the error of the quantisation. Datasets imported from the
    previous generation store ``amplitude: null`` (it was never recorded).

:func:`to_physical` undoes a list of them (last first) and returns physical units (tesla,
tesla/metre, volt, or source units). This module depends on nothing else in ephys-data, so the
recording model and the scaling stages can both use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ephys_core.errors import EphysError
from ephys_tokenizers import mulaw

__all__ = [
    "KINDS",
    "TransformError",
    "check_transform",
    "clip_record",
    "invert_transform",
    "mulaw_record",
    "normalize_record",
    "to_physical",
]

#: Transform kinds, with the keys each record must have.
KINDS: dict[str, tuple[str, ...]] = {
    "normalize": ("method", "center", "scale"),
    "clip": ("k", "low", "high"),
    "mulaw": ("mu", "amplitude"),
}


class TransformError(EphysError, ValueError):
    """A transform record is unknown or incomplete, or cannot be inverted."""


def normalize_record(
    method: str, center: np.ndarray, scale: np.ndarray, flat: Sequence[str] = ()
) -> dict[str, Any]:
    """The record of a per-channel normalisation ``(x - center) / scale``."""
    return {
        "kind": "normalize",
        "method": method,
        "center": np.asarray(center, dtype=np.float64).tolist(),
        "scale": np.asarray(scale, dtype=np.float64).tolist(),
        "flat": list(flat),
    }


def clip_record(
    k: float, low: np.ndarray, high: np.ndarray, fraction_clipped: float
) -> dict[str, Any]:
    """The record of clipping every channel to ``[low, high]`` (mean +/- ``k`` SD)."""
    return {
        "kind": "clip",
        "k": float(k),
        "low": np.asarray(low, dtype=np.float64).tolist(),
        "high": np.asarray(high, dtype=np.float64).tolist(),
        "fraction_clipped": float(fraction_clipped),
    }


def mulaw_record(
    mu: int, amplitude: float | None, reconstruction_mse: float | None = None
) -> dict[str, Any]:
    """The record of mu-law quantisation of ``x / amplitude`` to codes ``0 .. mu``."""
    record: dict[str, Any] = {
        "kind": "mulaw",
        "mu": int(mu),
        "amplitude": None if amplitude is None else float(amplitude),
    }
    if reconstruction_mse is not None:
        record["reconstruction_mse"] = float(reconstruction_mse)
    return record


def check_transform(transform: Mapping[str, Any]) -> dict[str, Any]:
    """``transform`` as a dict, after checking that its kind is known and its keys present.

    Raises
    ------
    TransformError
        An unknown kind or a missing parameter.
    """
    kind = transform.get("kind")
    if kind not in KINDS:
        raise TransformError(
            f"unknown amplitude transform kind {kind!r}; expected one of {', '.join(KINDS)}"
        )
    missing = [key for key in KINDS[kind] if key not in transform]
    if missing:
        raise TransformError(f"{kind} transform record lacks {', '.join(missing)}")
    return dict(transform)


def invert_transform(data: np.ndarray, transform: Mapping[str, Any]) -> np.ndarray:
    """Undo one recorded transform (clipping is the identity).

    Raises
    ------
    TransformError
        An unknown kind, or a mu-law record without its amplitude (legacy imports).
    """
    kind = check_transform(transform)["kind"]
    if kind == "mulaw":
        if transform["amplitude"] is None:
            raise TransformError(
                "this mu-law transform has no stored amplitude (data imported from the previous "
                "generation): its codes cannot be mapped back to physical units"
            )
        codes = mulaw.decode(data, int(transform["mu"])).astype(np.float64)
        return codes * float(transform["amplitude"])
    if kind == "normalize":
        center = np.asarray(transform["center"], dtype=np.float64)[:, None]
        scale = np.asarray(transform["scale"], dtype=np.float64)[:, None]
        return np.asarray(data, dtype=np.float64) * scale + center
    return np.asarray(data)


def to_physical(data: np.ndarray, transforms: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Undo amplitude ``transforms`` (last first), returning float64 data in physical units.

    ``data`` is ``(C, T)`` (or ``(..., C, T)``) prepared samples: codes for mu-law data,
    normalised values otherwise. Clipping cannot be undone; clipped samples stay at the bound.
    """
    out = np.asarray(data)
    for transform in reversed(list(transforms)):
        out = invert_transform(out, transform)
    return np.asarray(out, dtype=np.float64)
