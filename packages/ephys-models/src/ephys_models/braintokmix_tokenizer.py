"""The ``braintokmix`` tokenizer: a trained :class:`~ephys_models.braintokmix.BrainTokMix`
model with the channels it mixes, as a tokenizer folder (``ephys tokenizer export``).

Codes of one recording are ``(levels * n_latents, T / time_stride)``: row ``l * n_latents + j``
is level ``l`` of spatial token ``j``, in ``[0, codebook_size)``. The weights are the
tokenizer's state (``state.npz``); the model parameters and the channel names are its
parameters, so its identity covers all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from ephys_models.braintokmix import BrainTokMix
from ephys_models.configs.braintokmix import BrainTokMixConfig, BrainTokMixTokenizerConfig
from ephys_models.learned_tokenizer import LearnedTokenizer, time_receptive_field

__all__ = ["BrainTokMixTokenizer"]


class BrainTokMixTokenizer(LearnedTokenizer):
    """Encode one montage's signals to braintokmix codes, and decode them back.

    Causal: code step ``k`` depends on samples ``< (k + 1) * time_stride`` only. See
    :class:`~ephys_models.learned_tokenizer.LearnedTokenizer` for shapes and types.
    """

    Config: ClassVar[type[BrainTokMixTokenizerConfig]] = BrainTokMixTokenizerConfig

    def _build_model(self) -> BrainTokMix:
        return BrainTokMix(BrainTokMixConfig(**self.config.model))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BrainTokMixTokenizerConfig:
        """A tiny untrained model over five channels."""
        model = BrainTokMix.example_config()
        return BrainTokMixTokenizerConfig(
            model=model.model_dump(mode="json"),
            ch_names=[f"S{i}" for i in range(model.n_channels)],
        )

    @property
    def receptive_field(self) -> int:
        return time_receptive_field(self.model.encoder)

    @property
    def code_rows(self) -> int:
        """Rows of the codes: ``levels * n_latents``."""
        return self.model.levels * self.model.n_latents

    def _encode_block(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.model.encode(x)
        return grid.reshape(grid.shape[0], self.code_rows, grid.shape[-1])

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        grid = codes.reshape(codes.shape[0], self.model.levels, self.model.n_latents, -1)
        return self.model.decode(grid)

    @classmethod
    def from_trained(cls, model: BrainTokMix, builder: Any) -> BrainTokMixTokenizer:
        """The tokenizer of a trained model over the channels of ``builder``, the dataset it
        was trained on (what ``ephys tokenizer export`` saves)."""
        tokenizer = cls(
            BrainTokMixTokenizerConfig(
                model=model.config.model_dump(mode="json"), ch_names=list(builder.ch_names)
            )
        )
        tokenizer._take_weights(model)
        return tokenizer
