"""The levels of residual-quantiser codes: folding them into one token per latent, and
reading a latent's hidden state out into every level's logits.

A brainomni or braintokmix code dataset holds ``levels * n_latents`` rows, level by level:
row ``l * n_latents + j`` is level ``l`` of latent ``j``. A model embeds every row with its
level's table (one ``levels * V`` embedding, the rows shifted by :func:`level_offsets`), sums
a latent's levels (:func:`fold_levels`), and gives each level its own head
(:func:`level_logits`).

torch is imported at module level: ephys imports this module only when a model is built.
"""

from __future__ import annotations

import torch

__all__ = ["fold_levels", "level_logits", "level_offsets"]


def level_offsets(rows: int, levels: int, vocab_size: int) -> torch.Tensor:
    """``(1, rows, 1)`` int64 offsets that move each row's codes into its level's block of a
    ``levels * vocab_size`` embedding table."""
    level_of_row = torch.arange(rows) // (rows // levels)
    return level_of_row[None, :, None] * vocab_size


def fold_levels(embedded: torch.Tensor, levels: int) -> torch.Tensor:
    """Row embeddings ``(B, levels * N, T, D)`` -> ``(B, N, T, D)``: each latent's levels
    summed."""
    b, rows, t, d = embedded.shape
    return embedded.reshape(b, levels, rows // levels, t, d).sum(dim=1)


def level_logits(hidden: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
    """Latent states ``(B, N, T, D)`` and level heads ``(levels, V, D)`` -> logits
    ``(B, levels * N, T, V)``, the rows level by level."""
    b, n, t, _ = hidden.shape
    logits = torch.einsum("bntd,qvd->bqntv", hidden, heads)
    return logits.reshape(b, heads.shape[0] * n, t, heads.shape[1])
