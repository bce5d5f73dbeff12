"""STGPT2MEG: a factorised spatio-temporal transformer over mu-law tokens.

torch is imported at module level: ephys imports this module only when the model is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ephys_core.logging import get_logger
from ephys_models._layers import ContextEmbedding
from ephys_models.codes import Prior
from ephys_models.configs.stgpt2meg import STGPT2MEGConfig
from ephys_models.configs.token import TINY_EXAMPLE
from ephys_models.st_blocks import KVBuffer, STBlock, cached_start, init_st_weights, run_blocks
from ephys_models.token_model import TokenModel

__all__ = ["STGPT2MEG"]

log = get_logger(__name__)


class STGPT2MEG(TokenModel):
    """A factorised spatio-temporal transformer forecasting the next mu-law token per channel.

    Each block applies causal self-attention over time within every channel, then
    self-attention across channels within every time step (never across time), then an MLP
    (pre-LayerNorm residual branches). The input embedding of a token is the sum of its token
    embedding, a learned time-position embedding, its channel's embedding, the condition
    embedding of its time step (zero where the label is 0) and the subject embedding (when
    ``n_subjects > 0``).

    Input ``(B, C, T)`` int64 ids in ``[0, vocab_size)``, or ``{"x": ids, "condition": (B, T),
    "subject": (B,)}``; output logits ``(B, C, T, vocab_size)``, where output ``t`` predicts the
    token at ``t + 1`` and depends only on inputs ``<= t``. ``T <= context_length``.
    Generation (:meth:`forecast`) caches the temporal keys and values; a new step only needs
    the spatial attention among its own channels.
    """

    Config: ClassVar[type[STGPT2MEGConfig]] = STGPT2MEGConfig
    label: ClassVar[str] = "stgpt2meg"

    def __init__(self, config: STGPT2MEGConfig) -> None:
        super().__init__(config)
        d = config.d_model
        self.token = nn.Embedding(config.vocab_size, d)
        self.position = nn.Embedding(config.context_length, d)
        self.context = ContextEmbedding(
            config.n_channels, config.n_conditions, config.n_subjects, d
        )
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            STBlock(d, config.n_heads, config.mlp_ratio, config.dropout)
            for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(d)
        untied = not config.tie_embeddings and config.head == "softmax"
        self.head = nn.Linear(d, config.vocab_size, bias=False) if untied else None
        init_st_weights(self, config.n_layers)  # GPT-2, the residual projections by depth
        self.add_code_layers(d)  # after the GPT-2 initialisation: they keep their own
        log.debug("stgpt2meg: %d parameters", sum(p.numel() for p in self.parameters()))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> STGPT2MEGConfig:
        return cls.Config(**TINY_EXAMPLE, mlp_ratio=2, dropout=0.1)

    def _run(
        self, inputs: Any, state: list[KVBuffer] | None, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, list[KVBuffer] | None]:
        capacity = self.config.context_length if cache else 0
        batch = self.parse(inputs)
        t = batch.x.shape[-1]
        start = cached_start(state, t, self.config.context_length, self.label)
        positions = torch.arange(start, start + t, device=batch.x.device)
        h = self.embed_codes(self.token, batch.x) + self.position(positions)  # (B, C, T, D)
        extra = self.context(batch, "stgpt2meg")
        if extra is not None:
            h = h + extra
        h, buffers = run_blocks(self.blocks, self.drop(h), state, capacity)
        h = self.norm(h)
        weight = self.token.weight if self.head is None else self.head.weight
        return self.code_logits(h, weight, prior), buffers
