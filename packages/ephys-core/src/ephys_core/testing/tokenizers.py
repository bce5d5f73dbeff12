"""Conformance checks for ``ephys.tokenizers`` components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.testing._common import NotApplicable, build, ensure

__all__ = ["check_causality", "check_roundtrip", "check_vocabulary_range"]


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _ready(component: type) -> Any:
    tokenizer = build(component)
    if getattr(tokenizer, "requires_fit", False):
        tokenizer.fit(tokenizer.example_input(batch_size=4))
    return tokenizer


def check_roundtrip(component: type, workdir: Path) -> None:
    """``decode(encode(x))`` is within ``roundtrip_tolerance`` (relative L2 error) of ``x``."""
    tokenizer = _ready(component)
    x = tokenizer.example_input(batch_size=2)
    y = tokenizer.decode(tokenizer.encode(x))
    xa, ya = _numpy(x).astype(np.float64), _numpy(y).astype(np.float64)
    ensure(xa.shape == ya.shape, f"decoded shape {ya.shape} != input shape {xa.shape}")
    error = float(np.linalg.norm(ya - xa) / max(np.linalg.norm(xa), 1e-12))
    tolerance = float(tokenizer.roundtrip_tolerance)
    ensure(error <= tolerance, f"round-trip error {error:.4g} exceeds the stated {tolerance:.4g}")


def check_vocabulary_range(component: type, workdir: Path) -> None:
    """Codes are integers in ``[0, vocab_size)``."""
    tokenizer = _ready(component)
    codes = _numpy(tokenizer.encode(tokenizer.example_input(batch_size=2)))
    ensure(np.issubdtype(codes.dtype, np.integer), f"codes have dtype {codes.dtype}, not integer")
    ensure(codes.size > 0, "encode returned no codes")
    low, high = int(codes.min()), int(codes.max())
    ensure(
        0 <= low and high < tokenizer.vocab_size,
        f"codes span [{low}, {high}], outside [0, {tokenizer.vocab_size})",
    )


def check_causality(component: type, workdir: Path) -> None:
    """Codes before time t do not change when the signal from t on is perturbed."""
    if not component.causal:
        raise NotApplicable("the tokenizer is not causal")
    tokenizer = _ready(component)
    x = tokenizer.example_input(batch_size=2)
    stride = int(getattr(tokenizer, "time_stride", 1))
    xa = _numpy(x)
    n_times = xa.shape[-1]
    codes = _numpy(tokenizer.encode(x))
    rng = np.random.default_rng(0)
    for t in sorted({stride, (n_times // 2) // stride * stride}):
        changed = xa.copy()
        changed[..., t:] += rng.standard_normal(changed[..., t:].shape) * (xa.std() + 1.0)
        if hasattr(x, "detach"):
            import torch

            changed = torch.as_tensor(changed, dtype=x.dtype)
        codes2 = _numpy(tokenizer.encode(changed))
        keep = t // stride
        ensure(
            np.array_equal(codes[..., :keep], codes2[..., :keep]),
            f"codes before sample {t} changed when the signal from {t} on was perturbed",
        )
