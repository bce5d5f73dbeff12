"""Configuration and registration of ``brainomni_forecast`` (the model:
:mod:`ephys_models.brainomni_forecast`)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from ephys_core.components import LazyComponent
from ephys_models.configs.code_levels import CodeLevelsConfig
from ephys_models.configs.token import AttentionConfig

__all__ = ["BrainOmniForecastConfig", "brainomni_forecast"]


class BrainOmniForecastConfig(CodeLevelsConfig, AttentionConfig):
    """Parameters of :class:`ephys_models.brainomni_forecast.BrainOmniForecast`."""

    n_layers: int = Field(
        6,
        gt=0,
        description="Blocks of causal attention over time, attention across the latents "
        "within a step, and an MLP.",
    )
    mlp_ratio: int = Field(4, gt=0, description="Hidden width of the MLP / d_model.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout of attention and MLPs.")
    tie_level_heads: bool = Field(
        True, description="Use each level's code embedding matrix as that level's head."
    )

    @model_validator(mode="after")
    def _codes_are_not_mulaw(self) -> Self:
        if self.needs_mulaw_codes:
            raise ValueError(
                "brainomni_forecast reads residual-quantiser codes, not mu-law amplitudes: "
                "keep embedding: table, head: softmax and highway: none"
            )
        return self


brainomni_forecast = LazyComponent(
    "ephys_models.brainomni_forecast:BrainOmniForecast",
    BrainOmniForecastConfig,
    metadata={"causal": True},
)
