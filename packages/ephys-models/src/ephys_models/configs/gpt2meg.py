"""Configuration and registration of ``gpt2meg`` (the model: :mod:`ephys_models.gpt2meg`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ephys_core.components import LazyComponent
from ephys_models.configs.token import AttentionConfig

__all__ = ["GPT2MEGConfig", "gpt2meg"]


class GPT2MEGConfig(AttentionConfig):
    """Parameters of :class:`ephys_models.gpt2meg.GPT2MEG`."""

    d_model: int = Field(384, gt=0, description="Width of the transformer.")
    n_layers: int = Field(12, gt=0, description="Transformer blocks.")
    n_heads: int = Field(6, gt=0, description="Attention heads; must divide d_model.")
    dropout: float = Field(
        0.1, ge=0, lt=1, description="Dropout of embeddings, attention and residuals."
    )
    tie_embeddings: bool = Field(
        True, description="Use the token embedding matrix as the output head."
    )
    attn_implementation: Literal["sdpa", "eager"] = Field(
        "sdpa", description="Attention kernel of the backbone: `sdpa` (fast) or `eager`."
    )


gpt2meg = LazyComponent("ephys_models.gpt2meg:GPT2MEG", GPT2MEGConfig, metadata={"causal": True})
