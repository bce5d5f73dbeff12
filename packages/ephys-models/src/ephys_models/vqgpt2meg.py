"""VQGPT2MEG: a transformer forecasting the codes of a sensor-image tokenizer.

A sensor-image tokenizer (``vidtok_fsq``) turns every window of sensor images into a latent
grid of codes per code step; ``ephys tokenizer encode`` writes the grid's cells as code rows,
row-major. Here the rows of a step are flattened into ``rows`` tokens, and ephys's decoder
runs over all of them with a block-causal mask (the tokens of a step see each other and
every earlier step), so a whole latent image is predicted from the past ones. A token's
input is its code embedding plus its cell's grid-row and grid-column embeddings (a
factorised position in the image) and the step's condition and subject embeddings; time is
the rotary position, shared by the tokens of a step.

After the VQGPT2MEG of ephys-gpt (an image tokenizer's codes forecast by a transformer) and
VideoGPT (Yan et al. 2021, "VideoGPT: Video Generation using VQ-VAE and Transformers", arXiv
2104.10157).

torch is imported at module level: ephys imports this module only when the model is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ephys_core.logging import get_logger
from ephys_models._layers import ContextEmbedding, gpt_init
from ephys_models.codes import Prior
from ephys_models.configs.gpt2meg import VQGPT2MEGConfig
from ephys_models.configs.token import TINY_EXAMPLE
from ephys_models.token_model import TokenModel
from ephys_models.transformer import Decoder, DecoderModel

__all__ = ["VQGPT2MEG"]

log = get_logger(__name__)


class VQGPT2MEG(DecoderModel, TokenModel):
    """A block-causal transformer over the latent code images of a sensor-image tokenizer.

    Input ``(B, rows, T)`` int64 codes in ``[0, vocab_size)`` (row ``r`` is the cell ``(r //
    grid_width, r % grid_width)``), or the mapping with ``"condition"`` and ``"subject"``;
    output logits ``(B, rows, T, vocab_size)``, where output ``t`` predicts the codes of step
    ``t + 1`` from every cell of steps ``<= t``. Generation keeps the keys and values and
    feeds one latent image (``rows`` tokens) per forward pass. With ``mlp: moe`` the experts'
    load-balancing loss joins the training objective.

    After ephys-gpt's VQGPT2MEG and VideoGPT (Yan et al. 2021, "VideoGPT: Video Generation
    using VQ-VAE and Transformers", arXiv 2104.10157).
    """

    Config: ClassVar[type[VQGPT2MEGConfig]] = VQGPT2MEGConfig
    label: ClassVar[str] = "vqgpt2meg"

    def __init__(self, config: VQGPT2MEGConfig) -> None:
        super().__init__(config)
        cfg = config
        height, width = cfg.grid
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.grid_row = nn.Embedding(height, cfg.d_model)
        self.grid_col = nn.Embedding(width, cfg.d_model)
        cells = torch.arange(cfg.n_channels)
        self.register_buffer("cell_row", cells // width, persistent=False)
        self.register_buffer("cell_col", cells % width, persistent=False)
        self.context = ContextEmbedding(
            cfg.n_channels, cfg.n_conditions, cfg.n_subjects, cfg.d_model, channel=False
        )
        self.decoder = Decoder(cfg, self.label, cfg.learned_sinks)
        self.head = None
        if not cfg.tie_embeddings and cfg.head == "softmax":
            self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        for module in (self.wte, self.grid_row, self.grid_col, self.context, self.head):
            if module is not None:
                module.apply(gpt_init)
        self.add_code_layers(cfg.d_model)
        log.debug(
            "vqgpt2meg (%d x %d grid): %d parameters",
            height,
            width,
            sum(p.numel() for p in self.parameters()),
        )

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> VQGPT2MEGConfig:
        return cls.Config(**{**TINY_EXAMPLE, "n_channels": 4}, n_kv_heads=1, ffn_mult=2)

    def _run(
        self, inputs: Any, state: Any, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, Any]:
        batch = self.parse(inputs)
        b, rows, t = batch.x.shape
        cells = self.grid_row(self.cell_row) + self.grid_col(self.cell_col)  # (rows, D)
        h = self.embed_codes(self.wte, batch.x) + cells[None, :, None]  # (B, rows, T, D)
        extra = self.context(batch, self.label)
        if extra is not None:
            h = h + extra
        tokens = h.transpose(1, 2).reshape(b, t * rows, -1)  # step by step, cells within
        hidden, new_state = self.decoder(tokens, tokens_per_step=rows, state=state, cache=cache)
        hidden = hidden.reshape(b, t, rows, -1).transpose(1, 2)
        weight = self.wte.weight if self.head is None else self.head.weight
        return self.code_logits(hidden, weight, prior), new_state
