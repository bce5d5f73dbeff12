"""The mu-law companding codec (ITU-T G.711), for numpy arrays and torch tensors.

``encode`` maps amplitudes in ``[-1, 1]`` to integer codes ``0 .. mu`` (``mu + 1`` levels; the
default ``mu = 255`` gives 256 codes with 0.0 at code 128) and ``decode`` maps codes back to the
centre of their bin. Inputs outside ``[-1, 1]`` are clipped; callers divide by an amplitude
scale first and keep that scale to return to physical units
(:class:`ephys_tokenizers.MuLawTokenizer` and the ``mulaw`` preprocessing stage both do).
Non-finite inputs (NaN, +/-inf) are refused with a :class:`ValueError`: there is no code for
them, and silently mapping NaN to a code would let broken data train to a finite loss.

Both functions accept numpy arrays or torch tensors and return the same kind; torch is never
imported by this module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["bin_edges", "code_dtype", "decode", "encode"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def code_dtype(mu: int) -> np.dtype:
    """The smallest unsigned numpy dtype holding codes ``0 .. mu``."""
    return np.min_scalar_type(mu)


def _non_finite_error(count: int, total: int) -> ValueError:
    return ValueError(
        f"Invalid input for mu-law encoding. Expected finite amplitudes; got {count} NaN or "
        f"infinite value(s) among {total}. Find where they come from (a broken channel or "
        "segment) and zero, interpolate or drop it before encoding."
    )


def encode(x: Any, mu: int = 255) -> Any:
    """Compress ``x`` (amplitudes nominally in ``[-1, 1]``) to integer codes in ``[0, mu]``.

    Returns int64 tensors for torch input and the smallest unsigned dtype for numpy input.

    Raises
    ------
    ValueError
        ``mu < 1``, or ``x`` holds NaN or infinite values.
    """
    if mu < 1:
        raise ValueError(f"Invalid value for 'mu'. Expected an integer >= 1; got {mu!r}.")
    log1p_mu = math.log1p(mu)
    if _is_torch(x):
        import torch

        x = x.float()
        # one pass without a mask: the extremes are NaN if any value is, and show any inf
        if x.numel() and not bool(torch.isfinite(torch.stack(torch.aminmax(x))).all()):
            raise _non_finite_error(int((~torch.isfinite(x)).sum()), x.numel())
        x = torch.clamp(x, -1.0, 1.0)
        y = torch.sign(x) * torch.log1p(mu * torch.abs(x)) / log1p_mu
        return torch.round((y + 1) / 2 * mu).long()
    x = np.asarray(x, dtype=np.float64)
    # min and max propagate NaN and show inf without allocating a mask (cheap)
    if x.size and not (np.isfinite(x.min()) and np.isfinite(x.max())):
        raise _non_finite_error(int(x.size - np.count_nonzero(np.isfinite(x))), x.size)
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / log1p_mu
    return np.rint((y + 1) / 2 * mu).astype(code_dtype(mu))


def decode(codes: Any, mu: int = 255) -> Any:
    """Expand integer codes in ``[0, mu]`` back to amplitudes in ``[-1, 1]`` (float32)."""
    if _is_torch(codes):
        import torch

        y = codes.float() / mu * 2 - 1
        return torch.sign(y) * torch.expm1(torch.abs(y) * math.log1p(mu)) / mu
    y = np.asarray(codes, dtype=np.float64) / mu * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu).astype(np.float32)


def bin_edges(mu: int = 255) -> np.ndarray:
    """The amplitudes that separate the codes: ``(mu + 2,)``, from ``-inf`` to ``+inf``.

    Code ``k`` holds the amplitudes in ``[edges[k], edges[k + 1])`` (the outer codes also
    hold everything clipped beyond +/-1). A forecaster that predicts a continuous density
    scores its probability of code ``k`` as the mass between these two edges, which makes its
    cross-entropy directly comparable with a token model's.
    """
    if mu < 1:
        raise ValueError(f"Invalid value for 'mu'. Expected an integer >= 1; got {mu!r}.")
    y = (2 * np.arange(1, mu + 1) - 1) / mu - 1  # companded boundaries between neighbours
    inner = np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu
    return np.concatenate([[-np.inf], inner, [np.inf]])
