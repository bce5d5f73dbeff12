"""The GPT2MEG models on ephys's own transformer (:mod:`ephys_models.transformer`).

- ``gpt2meg_trf``: gpt2meg's layout (channels folded into the batch, one shared network) on
  ephys's decoder: rotary positions, RMSNorm, SwiGLU or a mixture of experts, grouped-query
  attention, a sliding window and learned attention sinks.
- ``gpt2meg_cond``: gpt2meg_trf conditioned on the condition labels of every time step: FiLM
  modulation of every block from the step's condition and the channel, and a low-rank bias
  of the attention logits from the query's and the key's conditions.
- ``gpt2meg_mix``: the channels mixed at the input into one token per time step, with
  channel dropout and a head per channel.

After the GPT2MEG variants of ephys-gpt and brain-gen ("Scaling Next-Brain-Token Prediction
for MEG", arXiv 2601.20138); FiLM after Perez et al. 2018 ("FiLM: Visual Reasoning with a
General Conditioning Layer", arXiv 1709.07871).

torch is imported at module level: ephys imports this module only when the model is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ephys_core.logging import get_logger
from ephys_models._layers import ContextEmbedding, TokenBatch, gpt_init
from ephys_models.channel_folded import ChannelFoldedModel
from ephys_models.codes import Prior
from ephys_models.configs.gpt2meg import GPT2MEGCondConfig, GPT2MEGMixConfig, GPT2MEGTrfConfig
from ephys_models.configs.token import TINY_EXAMPLE
from ephys_models.token_model import TokenModel
from ephys_models.transformer import Decoder, DecoderModel, DecoderState

__all__ = ["GPT2MEGCond", "GPT2MEGMix", "GPT2MEGTrf"]

log = get_logger(__name__)


def _logged(model: nn.Module, label: str) -> None:
    log.debug("%s: %d parameters", label, sum(p.numel() for p in model.parameters()))


class GPT2MEGTrf(DecoderModel, ChannelFoldedModel):
    """gpt2meg on ephys's own decoder transformer.

    Channels are folded into the batch: each channel is its own causal sequence over time and
    the decoder is shared. A token's input is its code embedding plus its channel's, its
    step's condition (zero for label 0) and its subject's embedding; positions are rotary.

    Input ``(B, C, T)`` int64 ids in ``[0, vocab_size)``, or ``{"x": ids, "condition": (B, T),
    "subject": (B,)}``; output logits ``(B, C, T, vocab_size)``, output ``t`` predicting the
    token at ``t + 1`` from inputs ``<= t``. Generation keeps every layer's keys and values.
    With ``mlp: moe`` the load-balancing loss of the experts joins the training objective.

    After ephys-gpt's GPT2MEG_Trf and brain-gen ("Scaling Next-Brain-Token Prediction for
    MEG", arXiv 2601.20138); mixture of experts as in the Switch Transformer (Fedus et al.
    2021, arXiv 2101.03961), learned sinks as in gpt-oss.
    """

    Config: ClassVar[type[GPT2MEGTrfConfig]] = GPT2MEGTrfConfig
    label: ClassVar[str] = "gpt2meg_trf"

    def __init__(self, config: GPT2MEGTrfConfig) -> None:
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        gpt_init(self.wte)
        self.decoder = Decoder(config, self.label, config.learned_sinks)
        self.add_context_and_head()
        _logged(self, self.label)

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> GPT2MEGTrfConfig:
        return cls.Config(
            **TINY_EXAMPLE, n_kv_heads=1, ffn_mult=2, mlp="moe", n_experts=4, learned_sinks=True
        )

    def code_table(self) -> nn.Embedding:
        return self.wte

    def _network(self, h: torch.Tensor, batch: TokenBatch, state: Any, cache: bool) -> Any:
        return self.decoder(h, state=state, cache=cache)


class GPT2MEGCond(GPT2MEGTrf):
    """gpt2meg_trf conditioned on every time step's condition label.

    Besides the condition embedding added to its input, every block's attention and MLP
    inputs are modulated (FiLM: ``x * (1 + scale) + shift``) by a linear map of the step's
    condition embedding plus the channel's embedding (the sequence's "global condition"), and
    the attention logit of a query and a key gains ``u(c_q) . w(c_k)``, a rank-
    ``condition_rank`` bias from their conditions (per head). The modulations start at zero,
    so an untrained model is gpt2meg_trf.

    Input ``{"x": (B, C, T) ids, "condition": (B, T) labels in [0, n_conditions]}`` (a plain
    tensor means no condition, label 0 everywhere); output ``(B, C, T, vocab_size)``, output
    ``t`` from inputs ``<= t``. Generation repeats the last context label unless it is given
    the future conditions.

    After ephys-gpt's GPT2MEG_Cond; FiLM after Perez et al. 2018 ("FiLM: Visual Reasoning with
    a General Conditioning Layer", arXiv 1709.07871).
    """

    Config: ClassVar[type[GPT2MEGCondConfig]] = GPT2MEGCondConfig
    label: ClassVar[str] = "gpt2meg_cond"

    def __init__(self, config: GPT2MEGCondConfig) -> None:
        super().__init__(config)
        d = config.d_model
        self.film_condition = nn.Embedding(config.n_conditions + 1, d)
        self.film_channel = nn.Embedding(config.n_channels, d)
        self.film = nn.Linear(d, 4 * d)
        for table in (self.film_condition, self.film_channel):
            gpt_init(table)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.bias_query = self.bias_key = None
        rank = config.condition_rank
        if rank:
            kv_heads = config.n_kv_heads or config.n_heads
            self.bias_query = nn.Embedding(config.n_conditions + 1, config.n_heads * rank)
            self.bias_key = nn.Embedding(config.n_conditions + 1, kv_heads * rank)
            gpt_init(self.bias_query)
            nn.init.zeros_(self.bias_key.weight)
        _logged(self, self.label)

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> GPT2MEGCondConfig:
        base = GPT2MEGTrf.example_config().model_dump()
        return cls.Config(**{**base, "mlp": "dense", "learned_sinks": False, "condition_rank": 2})

    def _network(
        self, h: torch.Tensor, batch: TokenBatch, state: DecoderState | None, cache: bool
    ) -> Any:
        b, c, t = batch.x.shape
        condition = batch.condition
        if condition is None:
            condition = torch.zeros(b, t, dtype=torch.long, device=batch.x.device)
        condition = condition.long()
        # (B, C, T, D): the step's condition and the channel, folded like the tokens
        cue = self.film_condition(condition)[:, None] + self.film_channel.weight[None, :, None]
        film = self.film(cue.reshape(b * c, t, -1))
        extra = None
        if self.bias_query is not None and self.bias_key is not None:
            rank = self.config.condition_rank

            def per_token(table: nn.Embedding) -> torch.Tensor:
                vectors = table(condition).reshape(b, 1, t, -1, rank).expand(-1, c, -1, -1, -1)
                return vectors.reshape(b * c, t, -1, rank)

            extra = (per_token(self.bias_query), per_token(self.bias_key))
        return self.decoder(h, state=state, cache=cache, film=film, qk_extra=extra)


class GPT2MEGMix(DecoderModel, TokenModel):
    """The channels mixed at the input: one token per time step, a head per channel.

    Each channel has its own ``channel_dim``-wide code embedding table; a step's input is a
    linear map of the concatenation of its channels' embeddings (in training, whole channels
    are dropped with probability ``channel_dropout``), plus the condition and subject
    embeddings. ephys's decoder runs causally over the steps. Channel ``c``'s logits for step
    ``t + 1`` are the dot products of a ``channel_dim`` projection of the step's state with
    channel ``c``'s code embeddings (the head is tied, channel by channel).

    Input ``(B, C, T)`` ids (or the mapping); output ``(B, C, T, vocab_size)``, output ``t``
    from inputs ``<= t``. Generation keeps the keys and values, one position per step.

    After ephys-gpt's GPT2MEGMix and brain-gen's channel-mixing models ("Scaling
    Next-Brain-Token Prediction for MEG", arXiv 2601.20138).
    """

    Config: ClassVar[type[GPT2MEGMixConfig]] = GPT2MEGMixConfig
    label: ClassVar[str] = "gpt2meg_mix"

    def __init__(self, config: GPT2MEGMixConfig) -> None:
        super().__init__(config)
        cfg = config
        c, w = cfg.n_channels, cfg.channel_dim
        self.codes = nn.Embedding(c * cfg.vocab_size, w)
        self.register_buffer("offsets", torch.arange(c)[None, :, None] * cfg.vocab_size, False)
        self.mix = nn.Linear(c * w, cfg.d_model)
        self.context = ContextEmbedding(
            c, cfg.n_conditions, cfg.n_subjects, cfg.d_model, channel=False
        )
        self.decoder = Decoder(cfg, self.label)
        self.unmix = nn.Linear(cfg.d_model, c * w)
        for module in (self.codes, self.mix, self.context, self.unmix):
            module.apply(gpt_init)
        self.add_code_layers(None if cfg.head == "mixture" else w, w)
        if self.mixture is not None:  # the mixture's 3 K raw parameters from the step state
            self.mixture_params = nn.Linear(cfg.d_model, c * 3 * cfg.mixture_components)
            gpt_init(self.mixture_params)
            self.mixture.init_(self.mixture_params, prior=self.highway is not None)
        _logged(self, self.label)

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> GPT2MEGMixConfig:
        base = GPT2MEGTrf.example_config().model_dump(exclude={"tie_embeddings", "learned_sinks"})
        return cls.Config(**{**base, "mlp": "dense", "channel_dim": 4, "channel_dropout": 0.2})

    def _run(
        self, inputs: Any, state: Any, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, Any]:
        batch = self.parse(inputs)
        b, c, t = batch.x.shape
        h = self.embed_codes(self.codes, batch.x, self.offsets)  # (B, C, T, W)
        p = self.config.channel_dropout
        if self.training and p > 0:
            keep = torch.rand(b, c, 1, 1, device=h.device) >= p
            h = h * keep / (1 - p)
        steps = self.mix(h.permute(0, 2, 1, 3).reshape(b, t, -1))  # (B, T, D)
        extra = self.context(batch, self.label)
        if extra is not None:
            steps = steps + extra[:, 0]
        hidden, new_state = self.decoder(steps, state=state, cache=cache)
        if self.mixture is not None:
            out = self.mixture_params(hidden).reshape(b, t, c, -1).transpose(1, 2)
            return self.head_logits(out, prior), new_state
        per_channel = self.unmix(hidden).reshape(b, t, c, -1).transpose(1, 2)  # (B, C, T, W)
        table = self.codes.weight.reshape(c, self.config.vocab_size, -1)
        logits = torch.einsum("bctw,cvw->bctv", per_channel, table)
        return self.head_logits(logits, prior), new_state
