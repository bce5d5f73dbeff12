"""Configuration and registration of the ``braintokmix`` model and tokenizer.

The model lives in :mod:`ephys_models.braintokmix`; this module imports neither it nor torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field, model_validator

from ephys_core.components import LazyComponent
from ephys_models.configs.learned_tokenizer import LearnedTokenizerConfig
from ephys_models.configs.seanet import SEANetCodecConfig

__all__ = [
    "BrainTokMixConfig",
    "BrainTokMixTokenizerConfig",
    "braintokmix",
    "braintokmix_tokenizer",
]


class BrainTokMixConfig(SEANetCodecConfig):
    """Parameters of :class:`ephys_models.braintokmix.BrainTokMix`."""

    n_channels: int = Field(
        4,
        gt=0,
        description="Input channels, mixed by the first convolution (filled from the data).",
    )
    channels: int = Field(
        64, gt=0, description="Width of the convolutional stem; doubled at every downsampling."
    )
    n_latents: int = Field(
        4,
        gt=0,
        description="Spatial tokens L the joint encoding of all channels is split into at each "
        "code step (brain-gen's n_neuro).",
    )

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Continuous signals of ``n_channels`` channels, windows a multiple of the stride."""
        problems = self.codec_problems("braintokmix", data_spec)
        n_channels = data_spec.get("n_channels")
        if n_channels is not None and int(n_channels) != self.n_channels:
            problems.append(
                f"n_channels is {self.n_channels}, but the data has {int(n_channels)} channels "
                "(leave n_channels unset to take it from the data)"
            )
        return problems


braintokmix = LazyComponent(
    "ephys_models.braintokmix:BrainTokMix", BrainTokMixConfig, metadata={"causal": True}
)


class BrainTokMixTokenizerConfig(LearnedTokenizerConfig):
    """Parameters of the ``braintokmix`` tokenizer: the trained model's parameters and the
    channels it encodes, in the order it was trained on."""

    @model_validator(mode="after")
    def _check_montage(self) -> Self:
        model = BrainTokMixConfig(**self.model)
        if len(self.ch_names) != model.n_channels:
            raise ValueError(
                f"the model mixes {model.n_channels} channels, but {len(self.ch_names)} "
                "channel names are given"
            )
        return self


braintokmix_tokenizer = LazyComponent(
    "ephys_models.braintokmix_tokenizer:BrainTokMixTokenizer", BrainTokMixTokenizerConfig
)
