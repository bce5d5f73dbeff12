"""Configuration and registration of ``flatgpt`` (the model: :mod:`ephys_models.flatgpt`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from ephys_core.components import LazyComponent
from ephys_models.configs.token import AttentionConfig

__all__ = [
    "BACKBONES",
    "BackboneConfig",
    "FlatGPTConfig",
    "FlatGPTEmbedsConfig",
    "FlatGPTMixConfig",
    "FlatGPTEmbedsRVQConfig",
    "FlatGPTRVQConfig",
    "flatgpt",
    "flatgpt_embeds",
    "flatgpt_embeds_rvq",
    "flatgpt_mix",
    "flatgpt_rvq",
]

#: Hugging Face causal-LM families a flatgpt backbone is built from (from a config, never
#: downloaded)
BACKBONES = ("gpt2", "llama", "qwen2", "qwen3", "qwen2_5_vl")


class BackboneConfig(AttentionConfig):
    """The Hugging Face decoder of the FlatGPT family."""

    backbone: Literal["gpt2", "llama", "qwen2", "qwen3", "qwen2_5_vl"] = Field(
        "qwen2",
        description="Hugging Face decoder family the transformer is built from: gpt2 "
        "(learned positions), llama (SmolLM-style), qwen2 or qwen3 (rotary positions, "
        "grouped-query attention), or qwen2_5_vl (the Qwen2.5-VL text decoder, with 3-D "
        "rotary positions: time step, channel, level).",
    )
    d_model: int = Field(256, gt=0, description="Width of the transformer.")
    n_layers: int = Field(4, gt=0, description="Transformer blocks.")
    n_heads: int = Field(4, gt=0, description="Attention heads; must divide d_model.")
    n_kv_heads: int | None = Field(
        None,
        gt=0,
        description="Key/value heads (grouped-query attention; must divide n_heads). Unset: "
        "one per attention head. Not for gpt2.",
    )
    ffn_mult: int = Field(4, gt=0, description="MLP width in multiples of d_model.")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Dropout of attention (and of gpt2's embeddings and residuals).",
    )
    rope_theta: float = Field(10000.0, gt=0, description="Base of the rotary positions (not gpt2).")
    rope_scaling: Literal["none", "linear", "yarn"] = Field(
        "none",
        description="Context extension of the rotary positions: linear interpolation or YaRN "
        "by rope_factor (a model trained on short windows run on longer ones). Not gpt2.",
    )
    rope_factor: float = Field(
        1.0, ge=1.0, description="How many times longer than trained the positions stretch."
    )
    sliding_window: int | None = Field(
        None,
        gt=0,
        description="Attend only to the last sliding_window time steps (all their channels). "
        "Unset: the whole context.",
    )
    attention_sinks: int = Field(
        0,
        ge=0,
        description="With a sliding window, the first attention_sinks time steps of the "
        "window stay visible to every later step (attention sinks, Xiao et al. 2023).",
    )

    @model_validator(mode="after")
    def _check_heads(self) -> Self:
        if self.n_kv_heads is not None:
            if self.backbone == "gpt2":
                raise ValueError("gpt2 has no grouped-query attention; leave n_kv_heads unset")
            if self.n_heads % self.n_kv_heads:
                raise ValueError(
                    f"n_kv_heads ({self.n_kv_heads}) must divide n_heads ({self.n_heads})"
                )
        if self.backbone == "gpt2" and self.rope_scaling != "none":
            raise ValueError("gpt2 has learned positions, not rotary ones; leave rope_scaling")
        if self.rope_scaling == "none" and self.rope_factor != 1.0:
            raise ValueError("rope_factor needs rope_scaling: linear or yarn")
        if self.attention_sinks and self.sliding_window is None:
            raise ValueError("attention_sinks need a sliding_window")
        return self


class FlatGPTConfig(BackboneConfig):
    """Parameters of :class:`ephys_models.flatgpt.FlatGPT`."""

    tie_embeddings: bool = Field(
        True, description="Use the token embedding matrix as the output head."
    )


class FlatGPTEmbedsConfig(BackboneConfig):
    """Parameters of :class:`ephys_models.flatgpt.FlatGPTEmbeds`."""


class FlatGPTMixConfig(BackboneConfig):
    """Parameters of :class:`ephys_models.flatgpt.FlatGPTMix`."""

    channel_dim: int = Field(
        16,
        gt=0,
        description="Width of each channel's code embedding; the n_channels * channel_dim "
        "concatenation is mixed into d_model by a linear layer.",
    )


class _CodeLevels(BackboneConfig):
    """Codes of a residual quantiser: ``code_levels`` levels of the rows."""

    code_levels: int = Field(
        1,
        ge=1,
        description="Residual-quantiser levels of the code rows (filled from the data: "
        "a brainomni or braintokmix code dataset's levels). The rows are level by level: "
        "row l * n_latents + j is level l of latent j.",
    )

    @model_validator(mode="after")
    def _levels_divide_rows(self) -> Self:
        if self.n_channels % self.code_levels:
            raise ValueError(
                f"code_levels ({self.code_levels}) must divide the code rows n_channels "
                f"({self.n_channels})"
            )
        return self

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        problems = super().check_data(data_spec)
        levels = data_spec.get("code_levels")
        if levels is not None and int(levels) != self.code_levels:
            problems.append(
                f"code_levels is {self.code_levels}, but the data's codes have {int(levels)} "
                "levels (leave code_levels unset to take it from the data)"
            )
        return problems


class FlatGPTRVQConfig(_CodeLevels):
    """Parameters of :class:`ephys_models.flatgpt.FlatGPTRVQ`."""

    tie_level_heads: bool = Field(
        True, description="Use each level's code embedding matrix as that level's head."
    )


class FlatGPTEmbedsRVQConfig(_CodeLevels):
    """Parameters of :class:`ephys_models.flatgpt.FlatGPTEmbedsRVQ`."""


flatgpt = LazyComponent("ephys_models.flatgpt:FlatGPT", FlatGPTConfig, metadata={"causal": True})
flatgpt_rvq = LazyComponent(
    "ephys_models.flatgpt:FlatGPTRVQ", FlatGPTRVQConfig, metadata={"causal": True}
)
flatgpt_embeds_rvq = LazyComponent(
    "ephys_models.flatgpt:FlatGPTEmbedsRVQ", FlatGPTEmbedsRVQConfig, metadata={"causal": True}
)
flatgpt_embeds = LazyComponent(
    "ephys_models.flatgpt:FlatGPTEmbeds", FlatGPTEmbedsConfig, metadata={"causal": True}
)
flatgpt_mix = LazyComponent(
    "ephys_models.flatgpt:FlatGPTMix", FlatGPTMixConfig, metadata={"causal": True}
)
