"""Configuration and registration of ``brainomni`` and its loss ``tokenizer_reconstruction``.

The model lives in :mod:`ephys_models.brainomni`, the loss in
:mod:`ephys_models.reconstruction_loss`; this module imports neither (nor torch), so that
validating a run configuration stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from ephys_core.components import ComponentConfig, LazyComponent

__all__ = [
    "RECONSTRUCTION_METRICS",
    "BrainOmniConfig",
    "BrainOmniTokenizerConfig",
    "TokenizerReconstructionConfig",
    "brainomni",
    "brainomni_tokenizer",
    "tokenizer_reconstruction",
]

#: Metrics ``tokenizer_reconstruction`` returns besides ``"loss"``.
RECONSTRUCTION_METRICS: tuple[str, ...] = (
    "l1",
    "pcc",
    "pcc_loss",
    "spectral_amplitude",
    "spectral_phase",
    "commitment",
    "usage",
    "perplexity",
)


def _continuous_only(name: str, data_spec: Mapping[str, Any]) -> list[str]:
    if data_spec.get("vocab_size") is not None:
        return [
            f"{name} encodes continuous signals, but the data holds token ids; use the "
            "`reconstruction` dataset on continuous (not mu-law or tokenizer) data"
        ]
    return []


class BrainOmniConfig(ComponentConfig):
    """Parameters of :class:`ephys_models.brainomni.BrainOmni`."""

    geometry_dim: Literal[2, 6] | None = Field(
        None,
        description="Values per sensor in inputs['pos']: 2 (layout positions, the "
        "`reconstruction` dataset's geometry `2d`) or 6 (3-D position + orientation, geometry "
        "`3d`). Unset: the model accepts both (2-D positions are zero-padded and flagged).",
    )
    n_sensor_types: int = Field(
        8,
        ge=1,
        description="Size of the sensor-type embedding; inputs['ch_type'] lie in "
        "[0, n_sensor_types).",
    )
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
    dim: int = Field(64, gt=0, description="Width D of the latents and of the attention.")
    n_latents: int = Field(
        16,
        gt=0,
        description="Latent channels L that the sensors are summarised into at each step, "
        "whatever the montage.",
    )
    n_heads: int = Field(4, gt=0, description="Attention heads (must divide dim).")
    ffn_mult: int = Field(
        2, gt=0, description="Hidden width of the attention blocks' MLPs, in multiples of dim."
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

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> Self:
        if self.dim % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide dim ({self.dim})")
        return self

    @property
    def time_stride(self) -> int:
        """Samples per code step: the product of ``strides``."""
        return math.prod(self.strides)

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Continuous signals, windows a multiple of the stride, sensors with positions."""
        problems = _continuous_only("brainomni", data_spec)
        n_times = data_spec.get("n_times")
        if n_times is not None and int(n_times) % self.time_stride:
            problems.append(
                f"the data's windows of {int(n_times)} samples are not a multiple of the time "
                f"stride {self.time_stride} (the product of strides {self.strides}); change "
                "data.dataset.params.window_seconds or strides"
            )
        if "pos_2d" in data_spec and data_spec["pos_2d"] is None and self.geometry_dim != 6:
            problems.append(
                "the data has no sensor positions, which brainomni needs to embed each sensor; "
                "use data with a sensor layout (the `reconstruction` dataset)"
            )
        ch_types = data_spec.get("ch_types")
        if ch_types and len(set(ch_types)) > self.n_sensor_types:
            problems.append(
                f"the data has {len(set(ch_types))} sensor types {sorted(set(ch_types))}, more "
                f"than n_sensor_types={self.n_sensor_types}; raise n_sensor_types"
            )
        return problems


class TokenizerReconstructionConfig(ComponentConfig):
    """Parameters of :class:`ephys_models.reconstruction_loss.TokenizerReconstruction`."""

    l1_weight: float = Field(1.0, ge=0, description="Weight of the mean absolute error.")
    pcc_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of exp(-r), r the Pearson correlation of each sensor over time.",
    )
    amplitude_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the L1 distance between log(1 + |rfft|) amplitude spectra.",
    )
    phase_weight: float = Field(
        0.5,
        ge=0,
        description="Weight of the amplitude-weighted 1 - cos(phase difference) of the spectra.",
    )
    commitment_weight: float = Field(
        1.0, ge=0, description="Weight of the model's quantiser (commitment) loss."
    )
    eps: float = Field(
        1e-6, gt=0, description="Stabiliser of the correlation and of the spectral phase."
    )

    @model_validator(mode="after")
    def _some_weight(self) -> Self:
        if not any((self.l1_weight, self.pcc_weight, self.amplitude_weight, self.phase_weight)):
            raise ValueError("at least one reconstruction weight must be positive")
        return self

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """The loss compares continuous signals."""
        return _continuous_only("tokenizer_reconstruction", data_spec)


brainomni = LazyComponent(
    "ephys_models.brainomni:BrainOmni", BrainOmniConfig, metadata={"causal": True}
)
tokenizer_reconstruction = LazyComponent(
    "ephys_models.reconstruction_loss:TokenizerReconstruction",
    TokenizerReconstructionConfig,
    metadata={"metrics": RECONSTRUCTION_METRICS},
)


class BrainOmniTokenizerConfig(ComponentConfig):
    """Parameters of the ``brainomni`` tokenizer: the trained model's parameters and the
    montage it encodes (the sensors of the data it was trained on)."""

    model: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the brainomni model (BrainOmniConfig)."
    )
    ch_names: list[str] = Field(default_factory=list, description="The montage's channels.")
    pos: list[list[float]] = Field(
        default_factory=list, description="Each channel's geometry, (C, 2) or (C, 6)."
    )
    ch_type: list[int] = Field(default_factory=list, description="Each channel's type index.")
    block_steps: int = Field(
        2048,
        ge=1,
        description="Code steps encoded at a time (a long recording is encoded in blocks with "
        "the encoder's receptive field as overlap, giving the codes of one pass).",
    )

    @model_validator(mode="after")
    def _check_montage(self) -> Self:
        BrainOmniConfig(**self.model)
        n = len(self.ch_names)
        if len(self.pos) != n or len(self.ch_type) != n:
            raise ValueError(
                f"the montage needs one position and type per channel: {n} names, "
                f"{len(self.pos)} positions, {len(self.ch_type)} types"
            )
        if len({len(p) for p in self.pos}) > 1:
            raise ValueError("every channel's position needs the same number of values")
        return self


brainomni_tokenizer = LazyComponent(
    "ephys_models.brainomni_tokenizer:BrainOmniTokenizer", BrainOmniTokenizerConfig
)
