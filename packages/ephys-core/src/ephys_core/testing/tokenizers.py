"""Conformance checks for ``ephys.tokenizers`` components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.testing._common import NotApplicable, build, ensure

__all__ = [
    "check_causality",
    "check_determinism",
    "check_roundtrip",
    "check_shapes",
    "check_state_roundtrip",
    "check_vocabulary_range",
]


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
    """``decode(encode(x))`` has the input's shape, is finite, and is within
    ``roundtrip_tolerance`` (relative L2 error) of ``x``; a learned tokenizer states ``None``
    (no accuracy of its own: its card measures it)."""
    tokenizer = _ready(component)
    x = tokenizer.example_input(batch_size=2)
    y = tokenizer.decode(tokenizer.encode(x))
    xa, ya = _numpy(x).astype(np.float64), _numpy(y).astype(np.float64)
    ensure(xa.shape == ya.shape, f"decoded shape {ya.shape} != input shape {xa.shape}")
    ensure(bool(np.isfinite(ya).all()), "decoded signals hold NaN or infinite values")
    if tokenizer.roundtrip_tolerance is None:  # learned: its card measures the error
        return
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


def check_shapes(component: type, workdir: Path) -> None:
    """Codes keep the batch dimensions and have ``T / time_stride`` steps; one example
    encodes as it does inside a batch."""
    tokenizer = _ready(component)
    x = tokenizer.example_input(batch_size=2)
    xa = _numpy(x)
    codes = _numpy(tokenizer.encode(x))
    stride = int(getattr(tokenizer, "time_stride", 1))
    ensure(codes.shape[0] == xa.shape[0], f"codes lost the batch dimension: {codes.shape}")
    ensure(
        codes.shape[-1] == xa.shape[-1] // stride,
        f"{xa.shape[-1]} samples at stride {stride} gave {codes.shape[-1]} code steps",
    )
    single = _numpy(tokenizer.encode(x[:1]))
    ensure(
        np.array_equal(single, codes[:1]),
        "the first example encodes differently alone than inside the batch",
    )


def check_determinism(component: type, workdir: Path) -> None:
    """Encoding the same signal twice gives the same codes, and decoding them the same signal."""
    tokenizer = _ready(component)
    x = tokenizer.example_input(batch_size=2)
    first, second = tokenizer.encode(x), tokenizer.encode(x)
    ensure(np.array_equal(_numpy(first), _numpy(second)), "encode is not deterministic")
    ensure(
        np.array_equal(_numpy(tokenizer.decode(first)), _numpy(tokenizer.decode(second))),
        "decode is not deterministic",
    )


def check_state_roundtrip(component: type, workdir: Path) -> None:
    """A fresh tokenizer given the fitted ``state()`` encodes exactly as the original
    (what saving and loading a tokenizer folder relies on)."""
    tokenizer = _ready(component)
    if not callable(getattr(tokenizer, "state", None)):
        ensure(
            not getattr(tokenizer, "requires_fit", False),
            "a tokenizer that is fitted must offer state() and load_state()",
        )
        raise NotApplicable("the tokenizer has no fitted state")
    fresh = build(component)
    fresh.load_state(tokenizer.state())
    x = tokenizer.example_input(batch_size=2)
    ensure(
        np.array_equal(_numpy(tokenizer.encode(x)), _numpy(fresh.encode(x))),
        "a tokenizer restored from state() encodes differently",
    )
