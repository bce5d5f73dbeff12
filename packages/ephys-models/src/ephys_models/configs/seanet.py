"""Parameters shared by the causal SEANet-style tokenizers (``brainomni``, ``braintokmix``):
the convolution stack, the latent width and the residual vector quantiser.

No torch here: validating a run configuration stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from ephys_core.components import ComponentConfig

__all__ = ["SEANetCodecConfig", "continuous_only"]


def continuous_only(name: str, data_spec: Mapping[str, Any]) -> list[str]:
    """The refusal of a component that reads continuous signals, given token ids."""
    if data_spec.get("vocab_size") is not None:
        return [
            f"{name} encodes continuous signals, but the data holds token ids; use the "
            "`reconstruction` dataset on continuous (not mu-law or tokenizer) data"
        ]
    return []


class SEANetCodecConfig(ComponentConfig):
    """The convolution stack and quantiser of a causal SEANet-style tokenizer."""

    channels: int = Field(
        16, gt=0, description="Width of the convolutional stem; doubled at every downsampling."
    )
    strides: list[int] = Field(
        default_factory=lambda: [2, 2],
        min_length=1,
        description="Time stride of each downsampling block; one code step covers "
        "prod(strides) samples.",
    )
    dilations: list[int] = Field(
        default_factory=lambda: [1, 3],
        description="Dilation of each residual unit of a block (SEANet uses 1, 3, 9).",
    )
    kernel_size: int = Field(
        7,
        ge=1,
        description="Kernel of the stem, of the projection to the latents and of "
        "the output convolution.",
    )
    residual_kernel_size: int = Field(
        3, ge=1, description="Kernel of the dilated convolutions of the residual units."
    )
    dim: int = Field(64, gt=0, description="Width D of each latent vector.")
    n_latents: int = Field(
        16, gt=0, description="Latent channels L: latent vectors quantised per code step."
    )
    codebook_size: int = Field(256, ge=2, description="Codewords per quantiser level.")
    levels: int = Field(4, ge=1, description="Residual vector quantiser levels.")
    commitment: float = Field(
        0.25, ge=0, description="Weight of each level's commitment loss inside the quantiser."
    )
    decay: float = Field(
        0.99, ge=0, lt=1, description="EMA decay of the codebooks (higher is slower)."
    )
    kmeans_init: bool = Field(
        True, description="Initialise the codebooks by k-means on the first training batch."
    )
    dead_code_threshold: float = Field(
        1e-3,
        ge=0,
        description="Restart codes whose EMA usage falls below this share of uniform use "
        "(0: never).",
    )

    @field_validator("strides", "dilations")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError(f"every entry must be >= 1; got {value}")
        return value

    @property
    def time_stride(self) -> int:
        """Samples per code step: the product of ``strides``."""
        return math.prod(self.strides)

    def quantizer_params(self) -> dict[str, Any]:
        """Keyword arguments of the residual vector quantiser after ``dim``."""
        return {
            "codebook_size": self.codebook_size,
            "levels": self.levels,
            "decay": self.decay,
            "commitment": self.commitment,
            "kmeans_init": self.kmeans_init,
            "dead_code_threshold": self.dead_code_threshold,
        }

    def codec_problems(self, name: str, data_spec: Mapping[str, Any]) -> list[str]:
        """Continuous signals, in windows a multiple of the time stride."""
        problems = continuous_only(name, data_spec)
        n_times = data_spec.get("n_times")
        if n_times is not None and int(n_times) % self.time_stride:
            problems.append(
                f"the data's windows of {int(n_times)} samples are not a multiple of the time "
                f"stride {self.time_stride} (the product of strides {self.strides}); change "
                "data.dataset.params.window_seconds or strides"
            )
        return problems
