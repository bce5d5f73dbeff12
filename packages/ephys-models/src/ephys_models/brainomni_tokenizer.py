"""The ``brainomni`` tokenizer: a trained :class:`~ephys_models.brainomni.BrainOmni` model
with the montage it encodes, as a tokenizer folder (``ephys tokenizer export``).

Codes of one recording are ``(levels * n_latents, T / time_stride)``: row ``l * n_latents + j``
is level ``l`` of latent channel ``j`` (the ``(levels, n_latents, T')`` grid flattened level
by level), in ``[0, codebook_size)``. The weights are the tokenizer's state (``state.npz``);
the model parameters and the montage are its parameters, so its identity covers all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ephys_models.brainomni import BrainOmni
from ephys_models.configs.brainomni import BrainOmniConfig, BrainOmniTokenizerConfig
from ephys_models.learned_tokenizer import LearnedTokenizer, time_receptive_field

__all__ = ["BrainOmniTokenizer", "receptive_field"]


def receptive_field(model: BrainOmni) -> int:
    """Input samples one code step depends on (its own ``time_stride`` and the history)."""
    return time_receptive_field(model.encoder)


class BrainOmniTokenizer(LearnedTokenizer):
    """Encode a montage's signals to brainomni codes, and decode them onto the montage.

    Causal: code step ``k`` depends on samples ``< (k + 1) * time_stride`` only. See
    :class:`~ephys_models.learned_tokenizer.LearnedTokenizer` for shapes and types.
    """

    Config: ClassVar[type[BrainOmniTokenizerConfig]] = BrainOmniTokenizerConfig

    def __init__(self, config: BrainOmniTokenizerConfig | None = None) -> None:
        super().__init__(config)
        self._pos = torch.tensor(self.config.pos, dtype=torch.float32)
        self._types = torch.tensor(self.config.ch_type, dtype=torch.int64)
        self.field = receptive_field(self.model)

    def _build_model(self) -> BrainOmni:
        return BrainOmni(BrainOmniConfig(**self.config.model))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BrainOmniTokenizerConfig:
        """A tiny untrained model over a montage of five sensors with 3-D geometry."""
        model = BrainOmni.example_config().model_dump(mode="json")
        rng = np.random.default_rng(0)
        return BrainOmniTokenizerConfig(
            model=model,
            ch_names=[f"S{i}" for i in range(5)],
            pos=rng.standard_normal((5, 6)).round(4).tolist(),
            ch_type=[0, 1, 2, 0, 1],
        )

    @property
    def receptive_field(self) -> int:
        return self.field

    @property
    def code_rows(self) -> int:
        """Rows of the codes: ``levels * n_latents``."""
        return self.model.levels * self.model.n_latents

    def _encode_block(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.model.encode({"x": x, "pos": self._pos, "ch_type": self._types})
        return grid.reshape(grid.shape[0], self.code_rows, grid.shape[-1])

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        grid = codes.reshape(codes.shape[0], self.model.levels, self.model.n_latents, -1)
        return self.model.decode(grid, self._pos, self._types)

    @classmethod
    def from_model(
        cls, model: BrainOmni, ch_names: list[str], pos: np.ndarray, ch_type: np.ndarray
    ) -> BrainOmniTokenizer:
        """The tokenizer of a trained model and the montage it was trained on."""
        tokenizer = cls(
            BrainOmniTokenizerConfig(
                model=model.config.model_dump(mode="json"),
                ch_names=list(ch_names),
                pos=np.asarray(pos, dtype=np.float64).tolist(),
                ch_type=np.asarray(ch_type, dtype=np.int64).tolist(),
            )
        )
        tokenizer._take_weights(model)
        return tokenizer

    @classmethod
    def from_trained(cls, model: BrainOmni, builder: Any) -> BrainOmniTokenizer:
        """The tokenizer of a trained model over the montage of ``builder``, the
        ``reconstruction`` dataset it was trained on (what ``ephys tokenizer export`` saves)."""
        return cls.from_model(model, builder.ch_names, builder.pos, builder.type_ids)
