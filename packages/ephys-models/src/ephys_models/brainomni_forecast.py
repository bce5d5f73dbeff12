"""BrainOmniForecast: a causal spatio-temporal transformer over residual-quantiser codes.

The codes of a trained brainomni or braintokmix tokenizer (``ephys tokenizer encode``) hold
``code_levels * n_latents`` rows, level by level. Here one token is one latent at one time
step, and the blocks of :mod:`ephys_models.st_blocks` attend causally over time within every
latent and across the latents within every step.

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
from ephys_models.configs.brainomni_forecast import BrainOmniForecastConfig
from ephys_models.rvq_levels import fold_levels, level_logits, level_offsets
from ephys_models.st_blocks import KVBuffer, STBlock, cached_start, init_st_weights, run_blocks
from ephys_models.stgpt2meg import STGPT2MEG
from ephys_models.token_model import TokenModel

__all__ = ["BrainOmniForecast"]

log = get_logger(__name__)


class BrainOmniForecast(TokenModel):
    """Forecasts the next step of a BrainOmni tokenizer's codes, every level of every latent.

    A latent's token at step ``t`` is the sum of its levels' code embeddings (each level its
    own table), a learned latent embedding, a learned time-position embedding, and the
    condition embedding of the step (zero where the label is 0) and the subject embedding
    (when ``n_subjects > 0``). Each block applies, with pre-LayerNorm residual branches,
    causal self-attention over time within every latent, self-attention across the latents
    within every time step (never across time), and an MLP. A final LayerNorm and one head
    per level (tied to that level's code table by default) give every row's logits, so the
    codes of a step, all levels and latents, are predicted together from the whole past.

    Input ``(B, code_levels * n_latents, T)`` int64 ids in ``[0, vocab_size)`` (row
    ``l * n_latents + j`` is level ``l`` of latent ``j``), or ``{"x": ids, "condition": (B,
    T), "subject": (B,)}``; output logits ``(B, code_levels * n_latents, T, vocab_size)``,
    where output ``t`` predicts the codes at ``t + 1`` and depends only on inputs ``<= t``.
    ``T <= context_length``. Generation (:meth:`forecast`) caches the temporal keys and
    values of every block; a new step attends over the cache in time and then only among its
    own latents.

    After BrainOmni (Xiao et al. 2025, "BrainOmni: A Brain Foundation Model for Unified EEG
    and MEG Signals", arXiv 2505.18185), whose transformer attends along time and across the
    latent sources of its BrainTokenizer's codes and is pretrained by masked token
    prediction; here the attention over time is causal and the model is trained to predict
    the next step.
    """

    Config: ClassVar[type[BrainOmniForecastConfig]] = BrainOmniForecastConfig
    label: ClassVar[str] = "brainomni_forecast"

    def __init__(self, config: BrainOmniForecastConfig) -> None:
        super().__init__(config)
        cfg = config
        d = cfg.d_model
        self.levels = cfg.code_levels
        self.latents = cfg.n_latents
        self.codes = nn.Embedding(self.levels * cfg.vocab_size, d)
        self.register_buffer(
            "offsets", level_offsets(cfg.n_channels, self.levels, cfg.vocab_size), False
        )
        self.position = nn.Embedding(cfg.context_length, d)
        self.context = ContextEmbedding(self.latents, cfg.n_conditions, cfg.n_subjects, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            STBlock(d, cfg.n_heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.n_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.heads = None
        if not cfg.tie_level_heads:
            self.heads = nn.Parameter(torch.empty(self.levels, cfg.vocab_size, d))
            nn.init.normal_(self.heads, 0.0, 0.02)
        init_st_weights(self, cfg.n_layers)
        log.debug(
            "brainomni_forecast (%d levels x %d latents): %d parameters",
            self.levels,
            self.latents,
            sum(p.numel() for p in self.parameters()),
        )

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BrainOmniForecastConfig:
        """stgpt2meg's tiny example over 2 levels x 3 latents of codes."""
        base = STGPT2MEG.example_config().model_dump(exclude={"tie_embeddings"})
        return cls.Config(**{**base, "n_channels": 6, "code_levels": 2})

    def _run(
        self, inputs: Any, state: list[KVBuffer] | None, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, list[KVBuffer] | None]:
        cfg = self.config
        capacity = cfg.context_length if cache else 0
        batch = self.parse(inputs)
        t = batch.x.shape[-1]
        start = cached_start(state, t, cfg.context_length, self.label)
        positions = torch.arange(start, start + t, device=batch.x.device)
        h = fold_levels(self.codes(batch.x + self.offsets), self.levels)  # (B, N, T, D)
        h = h + self.position(positions)
        extra = self.context(batch, self.label)  # the latent, condition, subject embeddings
        if extra is not None:
            h = h + extra
        h, buffers = run_blocks(self.blocks, self.drop(h), state, capacity)
        heads = self.codes.weight.reshape(self.levels, cfg.vocab_size, -1)
        if self.heads is not None:
            heads = self.heads
        return self.head_logits(level_logits(self.norm(h), heads), prior), buffers
