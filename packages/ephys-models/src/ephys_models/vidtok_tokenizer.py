"""The ``vidtok_fsq`` tokenizer: a trained :class:`~ephys_models.vidtok.VidTokFSQ` model with
the sensor image it encodes, as a tokenizer folder (``ephys tokenizer export``).

A recording's channels are placed on their pixels (the others hold ``fill_value``), encoded
to FSQ codes ``(T', H', W')``, and stored as ``(H' * W', T')``: row ``i * W' + j`` is code
pixel ``(i, j)``. Decoding reads the channels back from their pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from ephys_models.configs.vidtok import VidTokConfig, VidTokTokenizerConfig
from ephys_models.learned_tokenizer import LearnedTokenizer, time_receptive_field
from ephys_models.vidtok import VidTokFSQ

__all__ = ["VidTokTokenizer"]


class VidTokTokenizer(LearnedTokenizer):
    """Encode a montage's signals to vidtok_fsq codes through its sensor image, and back.

    Causal in time: code step ``k`` depends on samples ``< (k + 1) * time_stride`` only. See
    :class:`~ephys_models.learned_tokenizer.LearnedTokenizer` for shapes and types.
    """

    Config: ClassVar[type[VidTokTokenizerConfig]] = VidTokTokenizerConfig

    def __init__(self, config: VidTokTokenizerConfig | None = None) -> None:
        super().__init__(config)
        self._rows = torch.tensor(self.config.rows, dtype=torch.int64)
        self._cols = torch.tensor(self.config.cols, dtype=torch.int64)
        side = self.config.image_size // self.model.space_stride
        self._side = side

    def _build_model(self) -> VidTokFSQ:
        return VidTokFSQ(VidTokConfig(**self.config.model))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> VidTokTokenizerConfig:
        """A tiny untrained model over five channels on a 4 x 4 image."""
        return VidTokTokenizerConfig(
            model=VidTokFSQ.example_config().model_dump(mode="json"),
            ch_names=[f"S{i}" for i in range(5)],
            rows=[0, 1, 2, 3, 1],
            cols=[0, 3, 1, 2, 1],
            image_size=4,
        )

    @property
    def receptive_field(self) -> int:
        return time_receptive_field(self.model.encoder)

    @property
    def code_rows(self) -> int:
        """Rows of the codes: the code image's pixels, ``H' * W'``."""
        return self._side * self._side

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        image = torch.full((x.shape[0], size, size, x.shape[-1]), self.config.fill_value)
        image[:, self._rows, self._cols, :] = x
        return image

    def _encode_block(self, x: torch.Tensor) -> torch.Tensor:
        codes = self.model.encode(self._image(x))  # (B, T', H', W')
        return codes.permute(0, 2, 3, 1).reshape(codes.shape[0], self.code_rows, -1)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        grid = codes.reshape(codes.shape[0], self._side, self._side, -1).permute(0, 3, 1, 2)
        image = self.model.decode(grid)  # (B, H, W, T)
        return image[:, self._rows, self._cols, :]

    @classmethod
    def from_trained(cls, model: VidTokFSQ, builder: Any) -> VidTokTokenizer:
        """The tokenizer of a trained model over the sensor image of ``builder``, the
        ``sensor_image`` dataset it was trained on (what ``ephys tokenizer export`` saves)."""
        tokenizer = cls(
            VidTokTokenizerConfig(
                model=model.config.model_dump(mode="json"),
                ch_names=list(builder.ch_names),
                rows=[int(r) for r in builder.grid.rows],
                cols=[int(c) for c in builder.grid.cols],
                image_size=int(builder.grid.size),
                fill_value=float(builder.config.fill_value),
            )
        )
        tokenizer._take_weights(model)
        return tokenizer
