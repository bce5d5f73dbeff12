"""Configuration and registration of ``wavenet`` (the model: :mod:`ephys_models.wavenet`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ephys_core.components import LazyComponent
from ephys_models.configs.token import TokenModelConfig

__all__ = ["WaveNetConfig", "wavenet"]


class WaveNetConfig(TokenModelConfig):
    """Parameters of :class:`ephys_models.wavenet.WaveNet`."""

    embedding_dim: int = Field(8, gt=0, description="Token embedding width per channel.")
    residual_channels: int = Field(128, gt=0, description="Width of the residual stream.")
    gate_channels: int = Field(128, gt=0, description="Width of each gated activation.")
    skip_channels: int = Field(256, gt=0, description="Width of the skip connections.")
    head_channels: int = Field(256, gt=0, description="Hidden width of the output head.")
    kernel_size: int = Field(2, ge=2, description="Temporal kernel size.")
    dilations: list[int] = Field(
        default_factory=lambda: [2**i for i in range(8)] * 2,
        min_length=1,
        description="Dilation of each layer (default 1..128 twice: 511-sample field).",
    )
    context_dim: int = Field(
        16, gt=0, description="Width of the condition/subject embeddings fed to the gates."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout of the gated activations.")
    generation_window: int | None = Field(
        None,
        gt=0,
        description="Steps kept by forecast() without the cache (and before re-filling "
        "it); default twice the receptive field.",
    )

    @field_validator("dilations")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d < 1 for d in value):
            raise ValueError(f"dilations must be >= 1; got {value}")
        return value

    @property
    def receptive_field(self) -> int:
        """Input steps that each output depends on (including the current one)."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)


wavenet = LazyComponent("ephys_models.wavenet:WaveNet", WaveNetConfig, metadata={"causal": True})
