"""What the configuration of every learned tokenizer holds: the trained model's parameters,
the montage's channels and the block length of encoding. No torch here."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ephys_core.components import ComponentConfig

__all__ = ["LearnedTokenizerConfig"]


class LearnedTokenizerConfig(ComponentConfig):
    """The model and montage of a tokenizer that is a trained model."""

    model: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the trained model."
    )
    ch_names: list[str] = Field(default_factory=list, description="The montage's channels.")
    block_steps: int = Field(
        2048,
        ge=1,
        description="Code steps encoded at a time (a long recording is encoded in blocks with "
        "the encoder's receptive field as overlap, giving the codes of one pass).",
    )
