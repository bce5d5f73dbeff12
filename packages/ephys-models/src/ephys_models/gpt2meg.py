"""GPT2MEG: a Hugging Face GPT-2 over mu-law tokens, one sequence per channel.

torch and transformers are imported at module level: ephys imports this module only when the
model is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import GPT2Config, GPT2Model

from ephys_core.logging import get_logger
from ephys_models._layers import hf_cache_argument
from ephys_models.channel_folded import ChannelFoldedModel
from ephys_models.configs.gpt2meg import GPT2MEGConfig
from ephys_models.configs.token import TINY_EXAMPLE

__all__ = ["GPT2MEG"]

log = get_logger(__name__)


class GPT2MEG(ChannelFoldedModel):
    """A GPT-2 transformer forecasting the next mu-law token of every channel.

    Channels are folded into the batch: each channel is its own causal sequence over time, and
    the backbone (Hugging Face ``GPT2Model``) is shared. The input embedding of a token is the
    sum of its token embedding, its channel's embedding, the condition embedding of its time
    step (zero where the label is 0) and the subject embedding (when ``n_subjects > 0``).

    Input ``(B, C, T)`` int64 ids in ``[0, vocab_size)``, or ``{"x": ids, "condition": (B, T),
    "subject": (B,)}``; output logits ``(B, C, T, vocab_size)``, where output ``t`` predicts the
    token at ``t + 1`` and depends only on inputs ``<= t``. ``T <= context_length``.
    Generation (:meth:`forecast`) reuses the attention keys and values (the Hugging Face cache).
    """

    Config: ClassVar[type[GPT2MEGConfig]] = GPT2MEGConfig
    label: ClassVar[str] = "gpt2meg"

    def __init__(self, config: GPT2MEGConfig) -> None:
        super().__init__(config)
        hf_config = GPT2Config(
            vocab_size=config.vocab_size,
            n_positions=config.context_length,
            n_embd=config.d_model,
            n_layer=config.n_layers,
            n_head=config.n_heads,
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.dropout,
            bos_token_id=None,
            eos_token_id=None,
            attn_implementation=config.attn_implementation,
        )
        self.backbone = GPT2Model(hf_config)
        self._cache_arg = hf_cache_argument(self.backbone)
        self.add_context_and_head(hf_config.initializer_range)
        log.debug("gpt2meg: %d parameters", sum(p.numel() for p in self.parameters()))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> GPT2MEGConfig:
        return cls.Config(**TINY_EXAMPLE, dropout=0.1)

    def code_table(self) -> nn.Embedding:
        return self.backbone.wte

    def _network(self, h: torch.Tensor, batch: Any, state: Any, cache: bool) -> Any:
        past = 0 if state is None else state.get_seq_length()
        if past + h.shape[1] > self.config.context_length:
            raise ValueError(
                f"gpt2meg: {past + h.shape[1]} time steps exceed context_length="
                f"{self.config.context_length}; use a shorter window or a larger context_length"
            )
        kwargs = {self._cache_arg: state} if state is not None else {}
        output = self.backbone(inputs_embeds=h, use_cache=cache, **kwargs)
        return output.last_hidden_state, getattr(output, self._cache_arg, None)
