"""GPT2MEG: a Hugging Face GPT-2 over mu-law tokens, one sequence per channel.

torch and transformers are imported at module level: ephys imports this module only when the
model is used.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional as F
from transformers import GPT2Config, GPT2Model

from ephys_core.components import Component
from ephys_core.logging import get_logger
from ephys_models._layers import (
    ContextEmbedding,
    TokenModelConfig,
    example_tokens,
    gpt_init,
    parse_tokens,
)
from ephys_models.generation import TokenForecaster

__all__ = ["GPT2MEG"]

log = get_logger(__name__)

# transformers 5.x renamed ``past_key_values`` to ``cache`` (the old name is deprecated); 4.x
# only knows the old one. Use whichever the installed version declares.
_CACHE_ARG = "cache"
if "cache" not in inspect.signature(GPT2Model.forward).parameters:
    _CACHE_ARG = "past_key_values"


def _output_cache(output: Any) -> Any:
    return getattr(output, _CACHE_ARG, None)


class GPT2MEG(Component, TokenForecaster, nn.Module):
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

    class Config(TokenModelConfig):
        d_model: int = Field(384, gt=0, description="Width of the transformer.")
        n_layers: int = Field(12, gt=0, description="Transformer blocks.")
        n_heads: int = Field(6, gt=0, description="Attention heads; must divide d_model.")
        context_length: int = Field(
            512, gt=1, description="Longest input (time steps); also the generation window."
        )
        dropout: float = Field(
            0.1, ge=0, lt=1, description="Dropout of embeddings, attention and residuals."
        )
        tie_embeddings: bool = Field(
            True, description="Use the token embedding matrix as the output head."
        )
        attn_implementation: Literal["sdpa", "eager"] = Field(
            "sdpa", description="Attention kernel of the backbone: `sdpa` (fast) or `eager`."
        )

        @model_validator(mode="after")
        def _heads_divide_width(self) -> Self:
            if self.d_model % self.n_heads:
                raise ValueError(
                    f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
                )
            return self

    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -2

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
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
        self.context = ContextEmbedding(
            config.n_channels, config.n_conditions, config.n_subjects, config.d_model
        )
        std = hf_config.initializer_range
        self.context.apply(lambda module: gpt_init(module, std))
        self.head = None
        if not config.tie_embeddings:
            self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
            nn.init.normal_(self.head.weight, 0.0, std)
        log.debug("gpt2meg: %d parameters", sum(p.numel() for p in self.parameters()))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> Config:
        return cls.Config(
            n_channels=3,
            vocab_size=16,
            n_conditions=2,
            n_subjects=2,
            d_model=16,
            n_layers=2,
            n_heads=2,
            context_length=32,
            dropout=0.1,
        )

    @property
    def max_context(self) -> int:  # type: ignore[override]
        """Time steps the model attends to (the generation window)."""
        return self.config.context_length

    # -- forward --------------------------------------------------------------------------

    def _embed(self, inputs: Any) -> tuple[torch.Tensor, tuple[int, int, int]]:
        batch = parse_tokens(inputs, self.config.n_channels, "gpt2meg")
        b, c, t = batch.x.shape
        h = self.backbone.wte(batch.x)  # (B, C, T, D): the token embedding consumes (B, C, T)
        extra = self.context(batch, "gpt2meg")
        if extra is not None:
            h = h + extra
        return h.reshape(b * c, t, -1), (b, c, t)

    def _logits(self, hidden: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        weight = self.backbone.wte.weight if self.head is None else self.head.weight
        return F.linear(hidden, weight).reshape(*shape, -1)

    def _run(self, inputs: Any, cache: Any, use_cache: bool) -> tuple[torch.Tensor, Any]:
        embeds, shape = self._embed(inputs)
        past = 0 if cache is None else cache.get_seq_length()
        if past + shape[2] > self.config.context_length:
            raise ValueError(
                f"gpt2meg: {past + shape[2]} time steps exceed context_length="
                f"{self.config.context_length}; use a shorter window or a larger context_length"
            )
        kwargs = {_CACHE_ARG: cache} if cache is not None else {}
        output = self.backbone(inputs_embeds=embeds, use_cache=use_cache, **kwargs)
        return self._logits(output.last_hidden_state, shape), _output_cache(output)

    def forward(self, inputs: Any) -> torch.Tensor:
        """Logits ``(B, C, T, V)`` for token ids ``(B, C, T)`` (or a mapping with ``"x"``)."""
        return self._run(inputs, None, use_cache=False)[0]

    def example_input(self, batch_size: int = 2) -> Any:
        cfg = self.config
        return example_tokens(
            batch_size,
            cfg.n_channels,
            min(16, cfg.context_length),
            cfg.vocab_size,
            cfg.n_conditions,
            cfg.n_subjects,
        )

    def output_shape(self, inputs: Any) -> tuple[int, ...]:
        x = inputs["x"] if isinstance(inputs, dict) else inputs
        return (*x.shape, self.config.vocab_size)

    # -- generation hooks -----------------------------------------------------------------

    def _prefill(self, inputs: Any) -> tuple[torch.Tensor, Any]:
        logits, cache = self._run(inputs, None, use_cache=True)
        return logits[:, :, -1], cache

    def _step(self, inputs: Any, state: Any) -> tuple[torch.Tensor, Any]:
        logits, cache = self._run(inputs, state, use_cache=True)
        return logits[:, :, -1], cache
