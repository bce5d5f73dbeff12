"""STGPT2MEG: a factorised spatio-temporal transformer over mu-law tokens.

torch is imported at module level: ephys imports this module only when the model is used.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ephys_core.logging import get_logger
from ephys_models._layers import ContextEmbedding, gpt_init
from ephys_models.codes import Prior
from ephys_models.configs.stgpt2meg import STGPT2MEGConfig
from ephys_models.token_model import TokenModel

__all__ = ["STGPT2MEG"]

log = get_logger(__name__)


class _KVBuffer:
    """Keys and values of one temporal-attention layer during generation.

    ``k`` and ``v`` are ``(N, H, allocated, head_dim)``, of which the first ``length`` steps are
    valid. Storage grows by doubling up to ``capacity`` (the model's window), so appending a
    step costs the same on average however long the cache already is.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = self.length, self.length + k.shape[2]
        if stop > self.capacity:
            raise ValueError(
                f"stgpt2meg: the cache holds {self.capacity} steps; cannot append step {stop}"
            )
        if self.k is None or self.v is None:  # prefill: keep the tensors as they are
            self.k, self.v, self.length = k, v, stop
            return k, v
        if stop > self.k.shape[2]:
            size = min(self.capacity, max(stop, 2 * self.k.shape[2]))
            grown_k = self.k.new_empty(*self.k.shape[:2], size, self.k.shape[3])
            grown_v = self.v.new_empty(*self.v.shape[:2], size, self.v.shape[3])
            grown_k[:, :, :start] = self.k[:, :, :start]
            grown_v[:, :, :start] = self.v[:, :, :start]
            self.k, self.v = grown_k, grown_v
        self.k[:, :, start:stop] = k
        self.v[:, :, start:stop] = v
        self.length = stop
        return self.k[:, :, :stop], self.v[:, :, :stop]


class _SelfAttention(nn.Module):
    """Multi-head self-attention over the second axis of ``(N, L, D)``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(
        self,
        h: torch.Tensor,
        *,
        causal: bool,
        buffer: _KVBuffer | None = None,
        capacity: int = 0,
    ) -> tuple[torch.Tensor, _KVBuffer | None]:
        n, length, d = h.shape
        q, k, v = (
            t.reshape(n, length, self.n_heads, d // self.n_heads).transpose(1, 2)
            for t in self.qkv(h).chunk(3, dim=-1)
        )
        start = 0
        if capacity:  # generation: keep the keys and values
            if buffer is None:
                buffer = _KVBuffer(capacity)
            start = buffer.length
            k, v = buffer.append(k, v)
        dropout = self.dropout if self.training else 0.0
        if causal and start > 0 and length > 1:  # several new steps after a cached past
            rows = torch.arange(start, start + length, device=h.device)[:, None]
            mask = rows >= torch.arange(start + length, device=h.device)[None, :]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        else:  # one new step sees the whole past: no mask needed
            out = F.scaled_dot_product_attention(
                q, k, v, is_causal=causal and start == 0 and length > 1, dropout_p=dropout
            )
        out = out.transpose(1, 2).reshape(n, length, d)
        return self.resid_drop(self.proj(out)), buffer


class _MLP(nn.Module):
    def __init__(self, d_model: int, ratio: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, ratio * d_model)
        self.proj = nn.Linear(ratio * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(h))))


class _STBlock(nn.Module):
    """Causal attention over time per channel, attention over channels per step, then an MLP."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm_t = nn.LayerNorm(d_model)
        self.temporal = _SelfAttention(d_model, n_heads, dropout)
        self.norm_s = nn.LayerNorm(d_model)
        self.spatial = _SelfAttention(d_model, n_heads, dropout)
        self.norm_m = nn.LayerNorm(d_model)
        self.mlp = _MLP(d_model, mlp_ratio, dropout)

    def forward(
        self, h: torch.Tensor, buffer: _KVBuffer | None = None, capacity: int = 0
    ) -> tuple[torch.Tensor, _KVBuffer | None]:
        b, c, t, d = h.shape
        ht = h.reshape(b * c, t, d)
        update, buffer = self.temporal(
            self.norm_t(ht), causal=True, buffer=buffer, capacity=capacity
        )
        ht = ht + update
        hs = ht.reshape(b, c, t, d).transpose(1, 2).reshape(b * t, c, d)
        hs = hs + self.spatial(self.norm_s(hs), causal=False)[0]
        hs = hs + self.mlp(self.norm_m(hs))
        return hs.reshape(b, t, c, d).transpose(1, 2), buffer


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
            _STBlock(d, config.n_heads, config.mlp_ratio, config.dropout)
            for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(d)
        untied = not config.tie_embeddings and config.head == "softmax"
        self.head = nn.Linear(d, config.vocab_size, bias=False) if untied else None
        self.apply(gpt_init)
        # GPT-2: scale the residual output projections by the depth
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, 0.0, 0.02 / math.sqrt(3 * config.n_layers))
        self.add_code_layers(d)  # after the GPT-2 initialisation: they keep their own
        log.debug("stgpt2meg: %d parameters", sum(p.numel() for p in self.parameters()))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> STGPT2MEGConfig:
        return cls.Config(
            n_channels=3,
            vocab_size=16,
            n_conditions=2,
            n_subjects=2,
            d_model=16,
            n_layers=2,
            n_heads=2,
            mlp_ratio=2,
            context_length=32,
            dropout=0.1,
        )

    def _run(
        self, inputs: Any, state: list[_KVBuffer] | None, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, list[_KVBuffer] | None]:
        buffers = state
        capacity = self.config.context_length if cache else 0
        batch = self.parse(inputs)
        t = batch.x.shape[-1]
        start = buffers[0].length if buffers else 0
        if start + t > self.config.context_length:
            raise ValueError(
                f"stgpt2meg: {start + t} time steps exceed context_length="
                f"{self.config.context_length}; use a shorter window or a larger context_length"
            )
        positions = torch.arange(start, start + t, device=batch.x.device)
        h = self.embed_codes(self.token, batch.x) + self.position(positions)  # (B, C, T, D)
        extra = self.context(batch, "stgpt2meg")
        if extra is not None:
            h = h + extra
        h = self.drop(h)
        new_buffers = []
        for i, block in enumerate(self.blocks):
            h, buffer = block(h, buffers[i] if buffers else None, capacity)
            new_buffers.append(buffer)
        h = self.norm(h)
        weight = self.token.weight if self.head is None else self.head.weight
        return self.code_logits(h, weight, prior), (new_buffers if capacity else None)
