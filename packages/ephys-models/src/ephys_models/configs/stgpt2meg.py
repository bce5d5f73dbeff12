"""Configuration and registration of ``stgpt2meg`` (the model: :mod:`ephys_models.stgpt2meg`)."""

from __future__ import annotations

from pydantic import Field

from ephys_core.components import LazyComponent
from ephys_models.configs.token import AttentionConfig

__all__ = ["STGPT2MEGConfig", "stgpt2meg"]


class STGPT2MEGConfig(AttentionConfig):
    """Parameters of :class:`ephys_models.stgpt2meg.STGPT2MEG`."""

    n_layers: int = Field(8, gt=0, description="Spatio-temporal blocks.")
    mlp_ratio: int = Field(4, gt=0, description="Hidden width of the MLP / d_model.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout of attention and MLPs.")
    tie_embeddings: bool = Field(
        True, description="Use the token embedding matrix as the output head."
    )


stgpt2meg = LazyComponent(
    "ephys_models.stgpt2meg:STGPT2MEG", STGPT2MEGConfig, metadata={"causal": True}
)
