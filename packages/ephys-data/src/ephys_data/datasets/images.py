"""Channels as images: a sparse sensor grid with an exact inverse, and Gaussian interpolation.

:class:`SensorGrid` places every channel on its own pixel of an ``H x W`` grid (the pixel
nearest its 2-D position that no other channel took), so ``to_channels(to_image(x)) == x``
exactly. :class:`GaussianInterpolator` spreads channels over every pixel with Gaussian weights;
its inverse (the pseudo-inverse of the weights) recovers the channels of any image it made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ephys_core.errors import ConfigError

__all__ = ["GaussianInterpolator", "SensorGrid"]


@dataclass(frozen=True)
class SensorGrid:
    """Channel -> pixel assignment on a ``size x size`` grid.

    Attributes
    ----------
    rows, cols
        ``(C,)`` pixel of each channel (row 0 is the front of the head).
    size
        Grid side length.
    """

    rows: np.ndarray
    cols: np.ndarray
    size: int

    @classmethod
    def from_positions(cls, pos_2d: np.ndarray, size: int) -> SensorGrid:
        """Assign pixels to channels at ``pos_2d`` (``(C, 2)`` in ``[0, 1]``)."""
        pos = np.asarray(pos_2d, dtype=float)
        if len(pos) > size * size:
            raise ConfigError(f"image_size: {size}x{size} pixels cannot hold {len(pos)} channels")
        want_r = np.rint((1 - pos[:, 1]) * (size - 1)).astype(int)
        want_c = np.rint(pos[:, 0] * (size - 1)).astype(int)
        taken = np.zeros((size, size), dtype=bool)
        grid_r, grid_c = np.mgrid[0:size, 0:size]
        rows, cols = np.empty(len(pos), int), np.empty(len(pos), int)
        for i in range(len(pos)):
            r, c = want_r[i], want_c[i]
            if taken[r, c]:  # nearest free pixel
                dist = (grid_r - r) ** 2 + (grid_c - c) ** 2 + taken * (4 * size * size)
                r, c = np.unravel_index(int(np.argmin(dist)), dist.shape)
            taken[r, c] = True
            rows[i], cols[i] = r, c
        return cls(rows, cols, size)

    def to_image(self, x: np.ndarray, fill_value: float = 0.0) -> np.ndarray:
        """``(C, T)`` -> ``(size, size, T)``; pixels without a channel hold ``fill_value``."""
        image = np.full((self.size, self.size, x.shape[-1]), fill_value, dtype=x.dtype)
        image[self.rows, self.cols] = x
        return image

    def to_channels(self, image: np.ndarray) -> np.ndarray:
        """``(..., size, size, T)`` -> ``(..., C, T)``: the exact inverse of :meth:`to_image`."""
        return image[..., self.rows, self.cols, :]


@dataclass(frozen=True)
class GaussianInterpolator:
    """Dense images from channels by Gaussian-weighted interpolation.

    Attributes
    ----------
    weights
        ``(size * size, C)`` interpolation weights (rows sum to 1, or 0 far from all sensors).
    size
        Image side length.
    sigma
        Kernel width in pixels.
    """

    weights: np.ndarray
    size: int
    sigma: float

    @classmethod
    def from_positions(
        cls, pos_2d: np.ndarray, size: int, sigma_scale: float = 0.75, cutoff: float = 4.0
    ) -> GaussianInterpolator:
        """Kernel width = ``sigma_scale`` x the median nearest-neighbour sensor distance."""
        pos = np.asarray(pos_2d, dtype=float)
        sensors = np.stack([(1 - pos[:, 1]) * (size - 1), pos[:, 0] * (size - 1)], axis=1)
        gaps = np.linalg.norm(sensors[:, None] - sensors[None], axis=-1)
        np.fill_diagonal(gaps, np.inf)
        sigma = max(float(np.median(gaps.min(axis=1))) * sigma_scale, 1e-3)
        grid = np.stack(np.mgrid[0:size, 0:size], axis=-1).reshape(-1, 2).astype(float)
        dist = np.linalg.norm(grid[:, None] - sensors[None], axis=-1)
        weights = np.exp(-0.5 * (dist / sigma) ** 2)
        weights[dist > cutoff * sigma] = 0.0
        total = weights.sum(axis=1, keepdims=True)
        weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
        return cls(weights.astype(np.float32), size, sigma)

    def to_image(self, x: np.ndarray) -> np.ndarray:
        """``(C, T)`` -> ``(T, size, size)`` dense frames."""
        frames = self.weights @ x.astype(np.float32)  # (HW, T)
        return frames.T.reshape(x.shape[-1], self.size, self.size)

    def to_channels(self, frames: np.ndarray) -> np.ndarray:
        """``(..., T, size, size)`` -> ``(..., C, T)`` by least squares on the weights."""
        pinv = np.linalg.pinv(self.weights.astype(np.float64)).astype(np.float32)  # (C, HW)
        flat = frames.reshape(*frames.shape[:-2], self.size * self.size)  # (..., T, HW)
        return np.swapaxes(flat @ pinv.T, -1, -2)
