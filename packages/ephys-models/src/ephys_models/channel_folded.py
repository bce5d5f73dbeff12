"""The base of the GPT2MEG models that fold the channels into the batch.

Each channel is its own causal sequence over time and one network is shared by all of them;
a token's input is its code embedding plus its channel's, its step's condition and its
subject's embedding, and the output head is the code embedding matrix (tied) or its own.

torch is imported at module level: ephys imports this module only when a model is built.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ephys_models._layers import ContextEmbedding, TokenBatch, gpt_init
from ephys_models.codes import Prior
from ephys_models.token_model import TokenModel

__all__ = ["ChannelFoldedModel"]


class ChannelFoldedModel(TokenModel):
    """Channels folded into the batch, around a subclass's network (see the module docs).

    A subclass creates its code embedding table (returned by :meth:`code_table`), calls
    :meth:`add_context_and_head` and runs its network between :meth:`fold` and
    :meth:`unfold_logits`.
    """

    def code_table(self) -> nn.Embedding:
        """The code embedding table (also the head when the embeddings are tied)."""
        raise NotImplementedError

    def add_context_and_head(self, std: float = 0.02) -> None:
        """Create the channel/condition/subject embeddings, the untied head if configured,
        and the code-aware layers."""
        cfg = self.config
        self.context = ContextEmbedding(
            cfg.n_channels, cfg.n_conditions, cfg.n_subjects, cfg.d_model
        )
        self.context.apply(lambda module: gpt_init(module, std))
        self.head = None
        if not cfg.tie_embeddings and cfg.head == "softmax":
            self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
            nn.init.normal_(self.head.weight, 0.0, std)
        self.add_code_layers(cfg.d_model)

    def fold(self, batch: TokenBatch) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Input embeddings ``(B * C, T, D)`` of a batch, and its ``(B, C, T)`` shape."""
        b, c, t = batch.x.shape
        h = self.embed_codes(self.code_table(), batch.x)  # (B, C, T, D)
        extra = self.context(batch, self.label)
        if extra is not None:
            h = h + extra
        return h.reshape(b * c, t, -1), (b, c, t)

    def unfold_logits(
        self, hidden: torch.Tensor, shape: tuple[int, int, int], prior: Prior | None
    ) -> torch.Tensor:
        """Hidden states ``(B * C, T, D)`` -> logits ``(B, C, T, V)``."""
        weight = self.code_table().weight if self.head is None else self.head.weight
        if prior is not None:  # (B, C, T) -> (B * C, T), like the hidden states
            prior = (prior[0].reshape(hidden.shape[:-1]), prior[1].reshape(hidden.shape[:-1]))
        return self.code_logits(hidden, weight, prior).reshape(*shape, -1)

    def _network(self, h: torch.Tensor, batch: TokenBatch, state: Any, cache: bool) -> Any:
        raise NotImplementedError

    def _run(
        self, inputs: Any, state: Any, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, Any]:
        batch = self.parse(inputs)
        h, shape = self.fold(batch)
        hidden, new_state = self._network(h, batch, state, cache)
        return self.unfold_logits(hidden, shape, prior), new_state
