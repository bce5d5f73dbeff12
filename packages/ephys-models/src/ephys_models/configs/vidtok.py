"""Configuration and registration of ``vidtok_fsq``, a causal sensor-image tokenizer.

The model lives in :mod:`ephys_models.vidtok`; this module does not import it (nor torch), so
that validating a run configuration stays cheap. It trains with the ``tokenizer_reconstruction``
loss (:mod:`ephys_models.configs.brainomni`), whose terms run over the last (time) axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

from pydantic import Field, field_validator, model_validator

from ephys_core.components import ComponentConfig, LazyComponent
from ephys_models.configs.learned_tokenizer import LearnedTokenizerConfig

__all__ = ["VidTokConfig", "VidTokTokenizerConfig", "vidtok_fsq", "vidtok_fsq_tokenizer"]


class VidTokConfig(ComponentConfig):
    """Parameters of :class:`ephys_models.vidtok.VidTokFSQ`."""

    channels: int = Field(
        16, gt=0, description="Width of the convolutional stem; doubled at every downsampling."
    )
    time_strides: list[int] = Field(
        default_factory=lambda: [2, 2],
        description="Time stride of each downsampling block; one code step covers "
        "prod(time_strides) samples.",
    )
    space_strides: list[int] = Field(
        default_factory=lambda: [2],
        description="Spatial stride (height and width) of each downsampling block; one code "
        "covers prod(space_strides) pixels along each side.",
    )
    n_residual: int = Field(1, ge=0, description="Residual blocks at each resolution.")
    kernel_size: int = Field(
        3, ge=1, description="Temporal kernel of the stem, residual and output convolutions."
    )
    spatial_kernel_size: int = Field(
        3,
        ge=1,
        description="Spatial kernel of the stem, residual and output convolutions (odd: the "
        "spatial padding is symmetric).",
    )
    fsq_levels: list[int] = Field(
        default_factory=lambda: [8, 5, 5, 5],
        min_length=1,
        description="Levels of each channel of the finite scalar quantiser; the codebook holds "
        "prod(fsq_levels) codes.",
    )

    @field_validator("time_strides", "space_strides")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError(f"every stride must be >= 1; got {value}")
        return value

    @field_validator("fsq_levels")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        if any(v < 2 for v in value):
            raise ValueError(f"every FSQ level count must be >= 2; got {value}")
        return value

    @field_validator("spatial_kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"spatial_kernel_size must be odd; got {value}")
        return value

    @property
    def time_stride(self) -> int:
        """Input samples per code step: the product of ``time_strides``."""
        return math.prod(self.time_strides)

    @property
    def space_stride(self) -> int:
        """Pixels per code along each image side: the product of ``space_strides``."""
        return math.prod(self.space_strides)

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """``(time stride, space stride)`` of each downsampling block (missing ones are 1)."""
        return list(zip_longest(self.time_strides, self.space_strides, fillvalue=1))

    @property
    def vocab_size(self) -> int:
        """Codes lie in ``[0, prod(fsq_levels))``."""
        return math.prod(self.fsq_levels)

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Continuous sensor images, windows and image sides multiples of the strides."""
        problems: list[str] = []
        if data_spec.get("vocab_size") is not None:
            problems.append(
                "vidtok_fsq encodes continuous sensor images, but the data holds token ids; use "
                "the `sensor_image` dataset on continuous (not mu-law or tokenizer) data"
            )
        if data_spec.get("image_size") is None or data_spec.get("grid") is None:
            problems.append(
                "vidtok_fsq needs sensor images (a data spec with image_size and grid); use the "
                "`sensor_image` dataset with target: reconstruction"
            )
        n_times = data_spec.get("n_times")
        if n_times is not None and int(n_times) % self.time_stride:
            problems.append(
                f"the data's windows of {int(n_times)} samples are not a multiple of the time "
                f"stride {self.time_stride} (the product of time_strides {self.time_strides}); "
                "change data.dataset.params.window_seconds or time_strides"
            )
        size = data_spec.get("image_size")
        if size is not None and int(size) % self.space_stride:
            problems.append(
                f"the data's images of {int(size)} pixels a side are not a multiple of the space "
                f"stride {self.space_stride} (the product of space_strides "
                f"{self.space_strides}); change data.dataset.params.image_size or space_strides"
            )
        return problems


vidtok_fsq = LazyComponent("ephys_models.vidtok:VidTokFSQ", VidTokConfig, metadata={"causal": True})


class VidTokTokenizerConfig(LearnedTokenizerConfig):
    """Parameters of the ``vidtok_fsq`` tokenizer: the trained model's parameters and the
    sensor image it encodes (which channel sits on which pixel)."""

    rows: list[int] = Field(default_factory=list, description="Each channel's pixel row.")
    cols: list[int] = Field(default_factory=list, description="Each channel's pixel column.")
    image_size: int = Field(4, ge=1, description="Side of the sensor image, in pixels.")
    fill_value: float = Field(0.0, description="Value of the pixels without a channel.")

    @model_validator(mode="after")
    def _check_grid(self) -> VidTokTokenizerConfig:
        VidTokConfig(**self.model)
        n = len(self.ch_names)
        if len(self.rows) != n or len(self.cols) != n:
            raise ValueError(
                f"the grid needs one pixel per channel: {n} names, {len(self.rows)} rows, "
                f"{len(self.cols)} columns"
            )
        if any(not 0 <= v < self.image_size for v in (*self.rows, *self.cols)):
            raise ValueError(f"pixels must lie inside the {self.image_size}-pixel image")
        if len(set(zip(self.rows, self.cols, strict=True))) != n:
            raise ValueError("two channels share a pixel")
        return self


vidtok_fsq_tokenizer = LazyComponent(
    "ephys_models.vidtok_tokenizer:VidTokTokenizer", VidTokTokenizerConfig
)
