"""Configuration and registration of ``brainomni`` and its loss ``tokenizer_reconstruction``.

The model lives in :mod:`ephys_models.brainomni`, the loss in
:mod:`ephys_models.reconstruction_loss`; this module imports neither (nor torch), so that
validating a run configuration stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig, LazyComponent
from ephys_models.configs.learned_tokenizer import LearnedTokenizerConfig
from ephys_models.configs.seanet import SEANetCodecConfig, continuous_only

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


class BrainOmniConfig(SEANetCodecConfig):
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

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> Self:
        if self.dim % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide dim ({self.dim})")
        return self

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Continuous signals, windows a multiple of the stride, sensors with positions."""
        problems = self.codec_problems("brainomni", data_spec)
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
        return continuous_only("tokenizer_reconstruction", data_spec)


brainomni = LazyComponent(
    "ephys_models.brainomni:BrainOmni", BrainOmniConfig, metadata={"causal": True}
)
tokenizer_reconstruction = LazyComponent(
    "ephys_models.reconstruction_loss:TokenizerReconstruction",
    TokenizerReconstructionConfig,
    metadata={"metrics": RECONSTRUCTION_METRICS},
)


class BrainOmniTokenizerConfig(LearnedTokenizerConfig):
    """Parameters of the ``brainomni`` tokenizer: the trained model's parameters and the
    montage it encodes (the sensors of the data it was trained on)."""

    pos: list[list[float]] = Field(
        default_factory=list, description="Each channel's geometry, (C, 2) or (C, 6)."
    )
    ch_type: list[int] = Field(default_factory=list, description="Each channel's type index.")

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
