"""The shape of a decoder transformer: what ephys's own transformer and the Hugging Face
backbones of the FlatGPT family are both configured by (width, depth, heads, attention
window, MLP or mixture of experts)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from ephys_models.configs.token import AttentionConfig

__all__ = ["DecoderConfig"]


class DecoderConfig(AttentionConfig):
    """Width, depth, attention and MLP of a decoder transformer."""

    d_model: int = Field(256, gt=0, description="Width of the transformer.")
    n_layers: int = Field(4, gt=0, description="Transformer blocks.")
    n_heads: int = Field(4, gt=0, description="Attention heads; must divide d_model.")
    n_kv_heads: int | None = Field(
        None,
        gt=0,
        description="Key/value heads (grouped-query attention; must divide n_heads). Unset: "
        "one per attention head.",
    )
    ffn_mult: int = Field(4, gt=0, description="MLP width in multiples of d_model.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout of attention.")
    rope_theta: float = Field(10000.0, gt=0, description="Base of the rotary positions.")
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
    mlp: Literal["dense", "moe"] = Field(
        "dense",
        description="The blocks' MLP: dense, or a mixture of experts (each token routed to "
        "experts_per_token of n_experts MLPs; a load-balancing term joins the training loss).",
    )
    n_experts: int = Field(8, ge=2, description="Experts of each MoE layer (mlp: moe).")
    experts_per_token: int = Field(
        2, ge=1, description="Experts each token is routed to (mlp: moe)."
    )
    expert_ffn_mult: int = Field(
        1, gt=0, description="Each expert's MLP width in multiples of d_model (mlp: moe)."
    )
    moe_aux_weight: float = Field(
        0.01,
        ge=0,
        description="Weight of the load-balancing loss (Switch Transformer, Fedus et al. "
        "2021) added to the training objective (mlp: moe); logged as train/aux_loss.",
    )

    @model_validator(mode="after")
    def _check_decoder(self) -> Self:
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads ({self.n_kv_heads}) must divide n_heads ({self.n_heads})")
        if self.attention_sinks and self.sliding_window is None:
            raise ValueError("attention_sinks need a sliding_window")
        if self.experts_per_token > self.n_experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) cannot exceed n_experts "
                f"({self.n_experts})"
            )
        return self
