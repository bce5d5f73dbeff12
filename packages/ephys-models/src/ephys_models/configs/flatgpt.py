"""Configuration and registration of ``flatgpt`` (the model: :mod:`ephys_models.flatgpt`)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from ephys_core.components import LazyComponent
from ephys_models.configs.code_levels import CodeLevelsConfig
from ephys_models.configs.decoder import DecoderConfig

__all__ = [
    "BACKBONES",
    "MOE_BACKBONES",
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
#: backbones whose MLPs may be mixtures of experts (``mlp: moe``)
MOE_BACKBONES = ("qwen3",)


class BackboneConfig(DecoderConfig):
    """The Hugging Face decoder of the FlatGPT family."""

    backbone: Literal["gpt2", "llama", "qwen2", "qwen3", "qwen2_5_vl"] = Field(
        "qwen2",
        description="Hugging Face decoder family the transformer is built from: gpt2 "
        "(learned positions), llama (SmolLM-style), qwen2 or qwen3 (rotary positions, "
        "grouped-query attention; qwen3 with mlp: moe is Qwen3-MoE), or qwen2_5_vl (the "
        "Qwen2.5-VL text decoder, with 3-D rotary positions: time step, channel, level).",
    )
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Dropout of attention (and of gpt2's embeddings and residuals).",
    )
    rope_scaling: Literal["none", "linear", "yarn"] = Field(
        "none",
        description="Context extension of the rotary positions: linear interpolation or YaRN "
        "by rope_factor (a model trained on short windows run on longer ones). Not gpt2.",
    )
    rope_factor: float = Field(
        1.0, ge=1.0, description="How many times longer than trained the positions stretch."
    )

    @model_validator(mode="after")
    def _check_backbone(self) -> Self:
        if self.backbone == "gpt2":
            if self.n_kv_heads is not None:
                raise ValueError("gpt2 has no grouped-query attention; leave n_kv_heads unset")
            if self.rope_scaling != "none":
                raise ValueError("gpt2 has learned positions, not rotary ones; leave rope_scaling")
        if self.rope_scaling == "none" and self.rope_factor != 1.0:
            raise ValueError("rope_factor needs rope_scaling: linear or yarn")
        if self.mlp == "moe" and self.backbone not in MOE_BACKBONES:
            raise ValueError(
                f"mlp: moe needs a backbone with mixture-of-experts layers "
                f"({', '.join(MOE_BACKBONES)}); {self.backbone} has none"
            )
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


class _CodeLevels(CodeLevelsConfig, BackboneConfig):
    """A backbone over residual-quantiser codes: ``code_levels`` levels of the rows."""


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
