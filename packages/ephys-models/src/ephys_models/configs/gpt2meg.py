"""Configuration and registration of the GPT2MEG family: ``gpt2meg``
(:mod:`ephys_models.gpt2meg`), ``gpt2meg_trf``, ``gpt2meg_cond``, ``gpt2meg_mix``
(:mod:`ephys_models.gpt2meg_trf`) and ``vqgpt2meg`` (:mod:`ephys_models.vqgpt2meg`)."""

from __future__ import annotations

import math
from typing import Literal, Self

from pydantic import Field, model_validator

from ephys_core.components import LazyComponent
from ephys_models.configs.decoder import DecoderConfig
from ephys_models.configs.token import AttentionConfig

__all__ = [
    "GPT2MEGCondConfig",
    "GPT2MEGConfig",
    "GPT2MEGMixConfig",
    "GPT2MEGTrfConfig",
    "VQGPT2MEGConfig",
    "gpt2meg",
    "gpt2meg_cond",
    "gpt2meg_mix",
    "gpt2meg_trf",
    "vqgpt2meg",
]


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


class GPT2MEGTrfConfig(DecoderConfig):
    """Parameters of :class:`ephys_models.gpt2meg_trf.GPT2MEGTrf`."""

    tie_embeddings: bool = Field(
        True, description="Use the token embedding matrix as the output head."
    )
    learned_sinks: bool = Field(
        False,
        description="Give every attention head a learned sink logit: a zero key it may attend "
        "to instead of any token (as gpt-oss), which steadies attention in long rollouts.",
    )


class GPT2MEGCondConfig(GPT2MEGTrfConfig):
    """Parameters of :class:`ephys_models.gpt2meg_trf.GPT2MEGCond`."""

    n_conditions: int = Field(
        2,
        ge=0,
        description="Condition classes (labels 1..n_conditions; 0 = none), filled from the "
        "dataset's condition track. gpt2meg_cond needs at least one.",
    )
    condition_rank: int = Field(
        4,
        ge=0,
        description="Rank of the attention-logit bias from the query's and the key's "
        "condition labels (0: no bias, FiLM only).",
    )

    @model_validator(mode="after")
    def _needs_conditions(self) -> Self:
        if self.n_conditions == 0:
            raise ValueError(
                "gpt2meg_cond is conditioned on condition labels, and n_conditions is 0: read "
                "data with a condition track (data.dataset.params.labels: true, on sessions "
                "with labels.npy), or use a model without conditions (gpt2meg_trf)"
            )
        return self


class GPT2MEGMixConfig(DecoderConfig):
    """Parameters of :class:`ephys_models.gpt2meg_trf.GPT2MEGMix`."""

    channel_dim: int = Field(
        16,
        gt=0,
        description="Width of each channel's code embedding; a step's n_channels * channel_dim "
        "concatenation is mixed into d_model.",
    )
    channel_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="In training, the probability that a channel's input embedding is zeroed "
        "(the others rescaled), so the model does not lean on any one sensor.",
    )


gpt2meg_trf = LazyComponent(
    "ephys_models.gpt2meg_trf:GPT2MEGTrf", GPT2MEGTrfConfig, metadata={"causal": True}
)
gpt2meg_cond = LazyComponent(
    "ephys_models.gpt2meg_trf:GPT2MEGCond", GPT2MEGCondConfig, metadata={"causal": True}
)
gpt2meg_mix = LazyComponent(
    "ephys_models.gpt2meg_trf:GPT2MEGMix", GPT2MEGMixConfig, metadata={"causal": True}
)


class VQGPT2MEGConfig(GPT2MEGTrfConfig):
    """Parameters of :class:`ephys_models.vqgpt2meg.VQGPT2MEG`."""

    grid_width: int | None = Field(
        None,
        gt=0,
        description="Width of the tokenizer's latent image: code row r sits at (r // "
        "grid_width, r % grid_width) and gets that row's and column's embeddings. Unset: the "
        "square root of the code rows (vidtok_fsq's square latent grid).",
    )

    @model_validator(mode="after")
    def _grid_fits(self) -> Self:
        width = self.grid_width
        if width is None:
            width = math.isqrt(self.n_channels)
            if width * width != self.n_channels:
                raise ValueError(
                    f"the {self.n_channels} code rows are not a square grid; set grid_width "
                    "to the width of the tokenizer's latent image"
                )
        elif self.n_channels % width:
            raise ValueError(
                f"grid_width ({width}) must divide the code rows n_channels ({self.n_channels})"
            )
        return self

    @property
    def grid(self) -> tuple[int, int]:
        """``(height, width)`` of the latent grid."""
        width = self.grid_width or math.isqrt(self.n_channels)
        return self.n_channels // width, width


vqgpt2meg = LazyComponent(
    "ephys_models.vqgpt2meg:VQGPT2MEG", VQGPT2MEGConfig, metadata={"causal": True}
)
