"""Training-only augmentations of windows, configured in a dataset's ``augmentations`` list.

Each entry names an augmentation and its parameters, e.g.::

    augmentations:
      - {name: time_mask, num_blocks: 2, block_samples: 25, p: 0.5}
      - {name: additive_noise, sigma: 0.05}

They act on ``(C, T)`` windows (``spatial_warp`` and ``neighbour_swap`` on ``(H, W, T)`` sensor
images), are applied only to the training split, and draw from the worker's random generator,
so validation and test items never change. Integer (token) windows are handled too: values are
moved, never interpolated, and noise is refused.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from ephys_core.components import ComponentConfig
from ephys_core.errors import ConfigError

__all__ = ["Augmentation", "apply_augmentations"]


class _Base(ComponentConfig):
    p: float = Field(1.0, ge=0, le=1, description="Probability of applying it to a window.")
    image_only: ClassVar[bool] = False

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class TimeWarp(_Base):
    """Random monotonic piecewise-linear warp of time, shared by all channels."""

    name: Literal["time_warp"] = "time_warp"
    num_anchors: int = Field(6, ge=2, description="Anchor points of the warp.")
    strength: float = Field(0.2, ge=0, lt=1, description="Segment length change, +/- fraction.")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = x.shape[-1]
        widths = 1 + rng.uniform(-self.strength, self.strength, self.num_anchors - 1)
        knots = np.concatenate([[0.0], np.cumsum(widths)])
        knots = knots / knots[-1] * (n - 1)
        anchors = np.linspace(0, n - 1, self.num_anchors)
        source = np.interp(np.arange(n), anchors, knots)
        if np.issubdtype(x.dtype, np.integer):
            return x[..., np.clip(np.rint(source).astype(int), 0, n - 1)]
        lo = np.clip(np.floor(source).astype(int), 0, n - 1)
        hi = np.clip(lo + 1, 0, n - 1)
        frac = (source - lo).astype(x.dtype)
        return x[..., lo] * (1 - frac) + x[..., hi] * frac


class TimeMask(_Base):
    """Set random blocks of time (all channels) to a constant."""

    name: Literal["time_mask"] = "time_mask"
    num_blocks: int = Field(2, ge=1, description="Blocks masked.")
    block_samples: int = Field(32, ge=1, description="Length of each block in samples.")
    value: float = Field(0.0, description="Value written (a code for token data).")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = x.copy()
        n = x.shape[-1]
        length = min(self.block_samples, n)
        for start in rng.integers(0, n - length + 1, self.num_blocks):
            out[..., start : start + length] = self.value
        return out


class TimeShift(_Base):
    """Shift the window in time by up to ``max_shift`` samples (circularly or with a fill)."""

    name: Literal["time_shift"] = "time_shift"
    max_shift: int = Field(6, ge=1, description="Largest shift in samples, either direction.")
    wrap: bool = Field(True, description="Roll around instead of filling.")
    fill_value: float = Field(0.0, description="Value for samples shifted in when not wrapping.")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shift = int(rng.integers(-self.max_shift, self.max_shift + 1))
        out = np.roll(x, shift, axis=-1)
        if not self.wrap and shift:
            if shift > 0:
                out[..., :shift] = self.fill_value
            else:
                out[..., shift:] = self.fill_value
        return out


class AdditiveNoise(_Base):
    """Add Gaussian noise, by default relative to each channel's standard deviation."""

    name: Literal["additive_noise"] = "additive_noise"
    sigma: float = Field(0.01, ge=0, description="Noise standard deviation.")
    relative: bool = Field(True, description="Scale sigma by each channel's std.")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if np.issubdtype(x.dtype, np.integer):
            raise ConfigError("additive_noise cannot be applied to token (integer) data")
        scale = self.sigma * (x.std(axis=-1, keepdims=True) if self.relative else 1.0)
        return (x + rng.standard_normal(x.shape).astype(x.dtype) * scale).astype(x.dtype)


class SpatialWarp(_Base):
    """One random affine warp (rotation, translation, scale) of a sensor image, for all times."""

    name: Literal["spatial_warp"] = "spatial_warp"
    image_only: ClassVar[bool] = True
    max_degrees: float = Field(10.0, ge=0, description="Largest rotation.")
    max_translate: float = Field(0.05, ge=0, description="Largest shift, fraction of the size.")
    scale_range: tuple[float, float] = Field((0.9, 1.1), description="Range of zoom factors.")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.ndimage import affine_transform

        h, w = x.shape[:2]
        angle = np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees))
        scale = rng.uniform(*self.scale_range)
        shift = rng.uniform(-self.max_translate, self.max_translate, 2) * (h, w)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
        centre = np.array([(h - 1) / 2, (w - 1) / 2])
        matrix = np.eye(3)
        matrix[:2, :2] = rot
        offset = np.zeros(3)
        offset[:2] = centre - rot @ (centre + shift)
        order = 0 if np.issubdtype(x.dtype, np.integer) else 1
        return affine_transform(x, matrix, offset=offset, order=order, mode="nearest")


class NeighbourSwap(_Base):
    """Swap random pixels of a sensor image with their right or lower neighbour."""

    name: Literal["neighbour_swap"] = "neighbour_swap"
    image_only: ClassVar[bool] = True
    num_swaps: int = Field(8, ge=1, description="Swaps per window.")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = x.copy()
        h, w = x.shape[:2]
        for _ in range(self.num_swaps):
            i, j = int(rng.integers(0, h)), int(rng.integers(0, w))
            di, dj = ((1, 0), (0, 1))[int(rng.integers(0, 2))]
            k, m = min(i + di, h - 1), min(j + dj, w - 1)
            out[i, j], out[k, m] = x[k, m].copy(), x[i, j].copy()
        return out


Augmentation = Annotated[
    TimeWarp | TimeMask | TimeShift | AdditiveNoise | SpatialWarp | NeighbourSwap,
    Field(discriminator="name"),
]


def apply_augmentations(x: np.ndarray, augmentations: list, rng: np.random.Generator) -> np.ndarray:
    """Apply each augmentation with its probability, in order."""
    for augmentation in augmentations:
        if augmentation.p >= 1 or rng.random() < augmentation.p:
            x = augmentation(x, rng)
    return x
