"""Factorised spatio-temporal transformer blocks, shared by stgpt2meg and brainomni_forecast.

A block holds ``(B, N, T, D)`` hidden states of ``N`` streams (channels, or the latents of a
tokenizer) over ``T`` time steps. It applies, with pre-LayerNorm residual branches, causal
self-attention over time within every stream (whose keys and values a :class:`KVBuffer` keeps
during generation), self-attention across the streams within every time step, and an MLP.
Output ``t`` of a stack of blocks depends only on the inputs ``<= t``.

torch is imported at module level: ephys imports this module only when a model is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from ephys_models._layers import gpt_init

__all__ = [
    "MLP",
    "KVBuffer",
    "STBlock",
    "SelfAttention",
    "cached_start",
    "init_st_weights",
    "run_blocks",
]


class KVBuffer:
    """Keys and values of one temporal-attention layer during generation.

    ``k`` and ``v`` are ``(N, H, allocated, head_dim)``, of which the first ``length`` steps are
    valid. Storage grows by doubling up to ``capacity`` (the model's window), so appending a
    step costs the same on average however long the cache already is.

    Parameters
    ----------
    capacity
        The most time steps the buffer holds.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the keys and values of new steps; return those of every step held so far."""
        start, stop = self.length, self.length + k.shape[2]
        if stop > self.capacity:
            raise ValueError(
                f"the attention cache holds {self.capacity} steps; cannot append step {stop}"
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


class SelfAttention(nn.Module):
    """Multi-head self-attention over the second axis of ``(N, L, D)``.

    Parameters
    ----------
    d_model
        Width ``D``.
    n_heads
        Attention heads; must divide ``d_model``.
    dropout
        Dropout of the attention weights and of the output.
    """

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
        buffer: KVBuffer | None = None,
        capacity: int = 0,
    ) -> tuple[torch.Tensor, KVBuffer | None]:
        """Attend over ``h`` ``(N, L, D)``, after the steps ``buffer`` holds.

        With ``capacity > 0`` (generation) the keys and values are kept in ``buffer`` (a new
        one when ``None``), which is returned with the output.
        """
        n, length, d = h.shape
        q, k, v = (
            t.reshape(n, length, self.n_heads, d // self.n_heads).transpose(1, 2)
            for t in self.qkv(h).chunk(3, dim=-1)
        )
        start = 0
        if capacity:  # generation: keep the keys and values
            if buffer is None:
                buffer = KVBuffer(capacity)
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


class MLP(nn.Module):
    """A GELU MLP of hidden width ``ratio * d_model``, with dropout on its output."""

    def __init__(self, d_model: int, ratio: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, ratio * d_model)
        self.proj = nn.Linear(ratio * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(h))))


class STBlock(nn.Module):
    """Causal attention over time per stream, attention across streams per step, then an MLP.

    Parameters
    ----------
    d_model
        Width ``D``.
    n_heads
        Attention heads of both attentions; must divide ``d_model``.
    mlp_ratio
        Hidden width of the MLP in multiples of ``d_model``.
    dropout
        Dropout of the attentions and the MLP.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm_t = nn.LayerNorm(d_model)
        self.temporal = SelfAttention(d_model, n_heads, dropout)
        self.norm_s = nn.LayerNorm(d_model)
        self.spatial = SelfAttention(d_model, n_heads, dropout)
        self.norm_m = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_ratio, dropout)

    def forward(
        self, h: torch.Tensor, buffer: KVBuffer | None = None, capacity: int = 0
    ) -> tuple[torch.Tensor, KVBuffer | None]:
        """``(B, N, T, D)`` -> ``(B, N, T, D)``, with the temporal attention's buffer."""
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


def cached_start(
    buffers: list[KVBuffer] | None, new_steps: int, context_length: int, label: str
) -> int:
    """Time steps the ``buffers`` already hold, after checking that ``new_steps`` more fit.

    Raises
    ------
    ValueError
        When the cached and new steps together exceed ``context_length``.
    """
    start = buffers[0].length if buffers else 0
    if start + new_steps > context_length:
        raise ValueError(
            f"{label}: {start + new_steps} time steps exceed context_length={context_length}; "
            "use a shorter window or a larger context_length"
        )
    return start


def run_blocks(
    blocks: Iterable[STBlock],
    h: torch.Tensor,
    buffers: list[KVBuffer] | None,
    capacity: int,
) -> tuple[torch.Tensor, list[KVBuffer] | None]:
    """Run ``blocks`` in turn on ``h`` ``(B, N, T, D)`` after the steps ``buffers`` hold.

    Returns the hidden states and, when ``capacity > 0`` (generation), the blocks' new buffers
    (``None`` otherwise).
    """
    new_buffers = []
    for i, block in enumerate(blocks):
        h, buffer = block(h, buffers[i] if buffers else None, capacity)
        new_buffers.append(buffer)
    return h, (new_buffers if capacity else None)


def init_st_weights(model: nn.Module, n_layers: int) -> None:
    """GPT-2 initialisation of ``model``, with the residual output projections (the
    parameters named ``*proj.weight``) scaled down by the depth of ``n_layers`` blocks of
    three residual branches."""
    model.apply(gpt_init)
    for name, param in model.named_parameters():
        if name.endswith("proj.weight"):
            nn.init.normal_(param, 0.0, 0.02 / math.sqrt(3 * n_layers))
