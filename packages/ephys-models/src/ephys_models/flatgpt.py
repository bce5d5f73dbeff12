"""FlatGPT: a Hugging Face causal-LM backbone over the flattened code grid, block-causal.

The ``(C, T)`` codes of a window are flattened time step by time step into one sequence of
``C * T`` tokens (step 0's channels, then step 1's, ...), so that one transformer sees every
channel's past at once, where gpt2meg folds the channels into the batch. The attention mask
is block-causal: each token sees every token of its own and earlier time steps, none of later
ones, and the hidden state of channel ``c`` at step ``t`` predicts that channel's code at
``t + 1``. So a step's channels are predicted together from the whole past (the contract of
every ephys token model), and generation draws them together, one forward pass per step.
Positions are time steps: the channels of a step share one (the backbone's learned or rotary
position), and a learned channel embedding tells them apart.

The backbone is built from a configuration (never downloaded): GPT-2, Llama (the SmolLM
architecture), Qwen2 or Qwen3 (Qwen3-MoE with ``mlp: moe``, whose load-balancing loss joins
the training objective through ``auxiliary_loss``), with grouped-query attention where the
family has it. The mask
is passed as a boolean 4-D mask and the backbones run with ``sdpa`` attention, the one
implementation that honours such masks in all four families (tested by the conformance
suite's causality checks and by the cache test).

After the FlatGPT models of brain-gen ("Scaling Next-Brain-Token Prediction for MEG", arXiv
2601.20138).

torch and transformers are imported at module level: ephys imports this module only when the
model is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ephys_core.logging import get_logger
from ephys_models._layers import ContextEmbedding, gpt_init, hf_cache_argument
from ephys_models.codes import Prior
from ephys_models.configs.flatgpt import (
    BackboneConfig,
    FlatGPTConfig,
    FlatGPTEmbedsConfig,
    FlatGPTEmbedsRVQConfig,
    FlatGPTMixConfig,
    FlatGPTRVQConfig,
)
from ephys_models.configs.token import TINY_EXAMPLE
from ephys_models.rvq_levels import fold_levels, level_logits, level_offsets
from ephys_models.token_model import TokenModel
from ephys_models.transformer import block_causal_mask, load_balancing_loss

__all__ = [
    "FlatGPT",
    "FlatGPTEmbeds",
    "FlatGPTEmbedsRVQ",
    "FlatGPTMix",
    "FlatGPTRVQ",
]

log = get_logger(__name__)


def _backbone(config: BackboneConfig) -> nn.Module:
    """The Hugging Face decoder of ``config.backbone``, without token embeddings of its own
    (ephys embeds the codes and always passes ``inputs_embeds``)."""
    model = _hf_decoder(config)
    model.set_input_embeddings(None)
    return model


def _hf_decoder(config: BackboneConfig) -> nn.Module:
    cfg = config
    common = {
        "vocab_size": 1,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
        "attn_implementation": "sdpa",
    }
    if cfg.backbone == "gpt2":
        from transformers import GPT2Config, GPT2Model

        return GPT2Model(
            GPT2Config(
                n_positions=cfg.context_length,
                n_embd=cfg.d_model,
                n_layer=cfg.n_layers,
                n_head=cfg.n_heads,
                n_inner=cfg.ffn_mult * cfg.d_model,
                resid_pdrop=cfg.dropout,
                embd_pdrop=cfg.dropout,
                attn_pdrop=cfg.dropout,
                **common,
            )
        )
    import transformers

    family = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3", "qwen2_5_vl": "Qwen2_5_VLText"}[
        cfg.backbone
    ]
    if cfg.mlp == "moe":  # qwen3 (the only MoE_BACKBONES entry)
        family = "Qwen3Moe"
        common.update(
            num_experts=cfg.n_experts,
            num_experts_per_tok=cfg.experts_per_token,
            moe_intermediate_size=cfg.expert_ffn_mult * cfg.d_model,
            norm_topk_prob=True,
            decoder_sparse_step=1,
        )
    head_dim = cfg.d_model // cfg.n_heads
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling != "none":
        rope.update(
            rope_type=cfg.rope_scaling,
            factor=cfg.rope_factor,
            original_max_position_embeddings=cfg.context_length,
        )
    extra: dict[str, Any] = {"head_dim": head_dim, "tie_word_embeddings": False}
    if cfg.backbone == "qwen2_5_vl":
        rope["mrope_section"] = mrope_section(head_dim)
        extra = {}
    hf_config = getattr(transformers, f"{family}Config")(
        hidden_size=cfg.d_model,
        intermediate_size=cfg.ffn_mult * cfg.d_model,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads or cfg.n_heads,
        max_position_embeddings=int(cfg.context_length * cfg.rope_factor),
        attention_dropout=cfg.dropout,
        rope_parameters=rope,
        **extra,
        **common,
    )
    return getattr(transformers, f"{family}Model")(hf_config)


def mrope_section(head_dim: int) -> list[int]:
    """How the ``head_dim / 2`` rotary frequencies split between time, channel and level
    (Qwen2.5-VL's 3-D positions): half to time, a quarter each to the other two."""
    half = head_dim // 2
    quarter = half // 4
    return [half - 2 * quarter, quarter, quarter]


def positions(config: BackboneConfig, steps: torch.Tensor, n_channels: int, batch: int) -> Any:
    """Position ids of ``len(steps)`` time steps of ``n_channels`` tokens each: the time step
    of every token (``(B, L)``), or for qwen2_5_vl ``(3, B, L)`` (time step, channel, 0)."""
    time = steps.repeat_interleave(n_channels)[None].expand(batch, -1)
    if config.backbone != "qwen2_5_vl":
        return time
    channel = torch.arange(n_channels, device=steps.device).repeat(len(steps))
    return torch.stack([time, channel[None].expand(batch, -1), torch.zeros_like(time)])


class _FlatBackboneModel(TokenModel):
    """What the FlatGPT models share: the backbone, one pass of it over ``N`` tokens per time
    step, the attention window and the context it allows."""

    config: Any

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__(config)
        self.backbone = _backbone(config)
        self._cache_arg = hf_cache_argument(self.backbone)
        self._aux_loss: torch.Tensor | None = None

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The weighted load-balancing loss of the last forward pass (``mlp: moe``)."""
        return self._aux_loss

    def _past_steps(self, state: Any, tokens_per_step: int) -> int:
        return 0 if state is None else state.get_seq_length() // tokens_per_step

    def _backbone_pass(
        self, h: torch.Tensor, state: Any, cache: bool, past: int
    ) -> tuple[torch.Tensor, Any]:
        """Token embeddings ``(B, N, T, D)`` (``N`` per time step, after ``past`` cached
        steps) -> hidden states ``(B, N, T, D)`` and the new cache (``None`` unless
        ``cache``). The tokens run step by step, the ``N`` of a step within it, under the
        block-causal mask (with the configured window and sinks)."""
        b, n, t, _ = h.shape
        self._check_length(past + t)
        tokens = h.permute(0, 2, 1, 3).reshape(b, t * n, -1)
        steps = torch.arange(past, past + t, device=tokens.device)
        kwargs: dict[str, Any] = {self._cache_arg: state} if state is not None else {}
        moe = self.config.mlp == "moe"
        if moe:
            kwargs["output_router_logits"] = True
        output = self.backbone(
            inputs_embeds=tokens,
            attention_mask=self._mask(b, n, t, past, tokens.device),
            position_ids=positions(self.config, steps, n, b),
            use_cache=cache,
            **kwargs,
        )
        hidden = output.last_hidden_state.reshape(b, t, n, -1).permute(0, 2, 1, 3)
        if moe:
            self._aux_loss = self.config.moe_aux_weight * load_balancing_loss(
                list(output.router_logits), self.config.experts_per_token
            )
        return hidden, getattr(output, self._cache_arg, None) if cache else None

    def _parameters_logged(self, detail: str = "") -> None:
        log.debug(
            "%s (%s)%s: %d parameters",
            self.label,
            self.config.backbone,
            detail,
            sum(p.numel() for p in self.parameters()),
        )

    @property
    def max_context(self) -> int:  # type: ignore[override]
        """Time steps the model attends to: ``context_length``, times ``rope_factor`` when
        the rotary positions are stretched."""
        return int(self.config.context_length * self.config.rope_factor)

    def _check_length(self, steps: int) -> None:
        if steps > self.max_context:
            raise ValueError(
                f"{self.label}: {steps} time steps exceed context_length="
                f"{self.config.context_length}"
                + (
                    f" x rope_factor={self.config.rope_factor}"
                    if self.config.rope_factor > 1
                    else ""
                )
                + "; use a shorter window or a larger context_length"
            )

    def _mask(self, batch: int, tokens_per_step: int, new: int, past: int, device: Any) -> Any:
        cfg = self.config
        return block_causal_mask(
            batch, tokens_per_step, new, past, device, cfg.sliding_window, cfg.attention_sinks
        )


class FlatGPT(_FlatBackboneModel):
    """A causal-LM transformer over all channels' codes at once (see the module documentation).

    Input ``(B, C, T)`` int64 ids in ``[0, vocab_size)``, or ``{"x": ids, "condition": (B, T),
    "subject": (B,)}``; output logits ``(B, C, T, vocab_size)``, where output ``t`` predicts
    the codes at ``t + 1`` from inputs ``<= t`` (all channels). ``T <= context_length`` time
    steps, that is ``C * T`` tokens. Generation (:meth:`forecast`) keeps the backbone's
    key/value cache and feeds one time step (``C`` tokens) per forward pass.

    After the FlatGPT models of brain-gen ("Scaling Next-Brain-Token Prediction for MEG",
    arXiv 2601.20138), with a block-causal mask so that a step's channels are predicted
    together.
    """

    Config: ClassVar[type[FlatGPTConfig]] = FlatGPTConfig
    label: ClassVar[str] = "flatgpt"

    def __init__(self, config: FlatGPTConfig) -> None:
        super().__init__(config)
        std = 0.02
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.context = ContextEmbedding(
            config.n_channels, config.n_conditions, config.n_subjects, config.d_model
        )
        self.wte.apply(lambda module: gpt_init(module, std))
        self.context.apply(lambda module: gpt_init(module, std))
        self.head = None
        if not config.tie_embeddings and config.head == "softmax":
            self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
            nn.init.normal_(self.head.weight, 0.0, std)
        self.add_code_layers(config.d_model)
        self._parameters_logged()

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> FlatGPTConfig:
        return cls.Config(**TINY_EXAMPLE, backbone="qwen2", n_kv_heads=1, ffn_mult=2)

    def _run(
        self, inputs: Any, state: Any, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, Any]:
        batch = self.parse(inputs)
        h = self.embed_codes(self.wte, batch.x)  # (B, C, T, D)
        extra = self.context(batch, "flatgpt")
        if extra is not None:
            h = h + extra
        hidden, new_state = self._backbone_pass(
            h, state, cache, self._past_steps(state, batch.x.shape[1])
        )
        weight = self.wte.weight if self.head is None else self.head.weight
        return self.code_logits(hidden, weight, prior), new_state


class FlatGPTEmbeds(_FlatBackboneModel):
    """One position per time step: the step's channel embeddings summed into one vector.

    Each channel has its own code embedding table; a step's input is the sum over channels
    of their codes' embeddings (plus the condition and subject embeddings), so the sequence
    is ``T`` long whatever the number of channels and attention is plainly causal over time.
    The backbone's hidden state of step ``t`` plus a learned embedding of channel ``c``,
    normalised, gives channel ``c``'s logits for step ``t + 1`` through a shared head.

    Input ``(B, C, T)`` ids (or the mapping); output ``(B, C, T, vocab_size)``, output ``t``
    from inputs ``<= t``. Generation keeps the key/value cache, one position per step. After
    brain-gen's FlatGPTEmbeds ("Scaling Next-Brain-Token Prediction for MEG", arXiv
    2601.20138).
    """

    Config: ClassVar[type[BackboneConfig]] = FlatGPTEmbedsConfig
    label: ClassVar[str] = "flatgpt_embeds"

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__(config)
        cfg = config
        width = self._embedding_width()
        self.codes = nn.Embedding(cfg.n_channels * cfg.vocab_size, width)
        self.register_buffer(
            "offsets", torch.arange(cfg.n_channels)[None, :, None] * cfg.vocab_size, False
        )
        self.context = ContextEmbedding(
            cfg.n_channels, cfg.n_conditions, cfg.n_subjects, cfg.d_model, channel=False
        )
        self.out_channels = nn.Embedding(cfg.n_channels, cfg.d_model)
        self.out_norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        for module in (self.codes, self.context, self.out_channels, self.head):
            module.apply(lambda m: gpt_init(m, 0.02))
        self.add_code_layers(cfg.d_model, width)
        self._parameters_logged()

    def _embedding_width(self) -> int:
        return int(self.config.d_model)

    def _combine(self, h: torch.Tensor) -> torch.Tensor:
        """Per-channel code embeddings ``(B, C, T, W)`` -> step inputs ``(B, T, D)``."""
        return h.sum(dim=1)

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BackboneConfig:
        return cls.Config(**TINY_EXAMPLE, backbone="llama", n_kv_heads=1, ffn_mult=2)

    def _run(
        self, inputs: Any, state: Any, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, Any]:
        batch = self.parse(inputs)
        steps = self._combine(self.embed_codes(self.codes, batch.x, self.offsets))  # (B, T, D)
        extra = self.context(batch, self.label)  # (B, 1 or C, T, D) or None
        if extra is not None:
            steps = steps + extra[:, 0]
        hidden, new_state = self._backbone_pass(
            steps[:, None], state, cache, self._past_steps(state, 1)
        )
        return self._logits(hidden[:, 0], prior), new_state

    def _logits(self, hidden: torch.Tensor, prior: Prior | None) -> torch.Tensor:
        """Step states ``(B, T, D)`` -> every channel's logits ``(B, C, T, V)``."""
        hidden = hidden[:, None] + self.out_channels.weight[None, :, None]
        return self.code_logits(self.out_norm(hidden), self.head.weight, prior)


class FlatGPTMix(FlatGPTEmbeds):
    """One position per time step: the step's channel embeddings concatenated and mixed.

    As :class:`FlatGPTEmbeds`, but each channel's code embedding is ``channel_dim`` wide and a
    step's input is a linear map of their concatenation (``n_channels * channel_dim`` values)
    to ``d_model``: the channels are mixed at the input. After brain-gen's FlatGPTMix
    ("Scaling Next-Brain-Token Prediction for MEG", arXiv 2601.20138).
    """

    Config: ClassVar[type[BackboneConfig]] = FlatGPTMixConfig
    label: ClassVar[str] = "flatgpt_mix"

    def __init__(self, config: FlatGPTMixConfig) -> None:
        super().__init__(config)
        self.mix = nn.Linear(config.n_channels * config.channel_dim, config.d_model)
        gpt_init(self.mix, 0.02)

    def _embedding_width(self) -> int:
        return int(self.config.channel_dim)

    def _combine(self, h: torch.Tensor) -> torch.Tensor:
        b, c, t, w = h.shape
        return self.mix(h.permute(0, 2, 1, 3).reshape(b, t, c * w))

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BackboneConfig:
        base = FlatGPTEmbeds.example_config().model_dump()
        return cls.Config(**{**base, "backbone": "qwen3", "channel_dim": 4})


class FlatGPTRVQ(_FlatBackboneModel):
    """FlatGPT over residual-quantiser codes: the levels of a latent folded into one token.

    A brainomni or braintokmix code dataset holds ``levels * n_latents`` rows, level by level.
    Here one token is one latent at one time step: the sum of its levels' code embeddings
    (each level its own table) plus the latent's embedding. The ``n_latents * T`` tokens run
    through the backbone with the block-causal mask of :class:`FlatGPT`, and each level has
    its own head (tied to its table by default), so a step's codes of every level and latent
    are predicted together from the whole past. Positions are time steps (qwen2_5_vl: time
    step, latent, 0).

    Input ``(B, levels * n_latents, T)`` ids; output ``(B, levels * n_latents, T, V)``, output
    ``t`` from inputs ``<= t``. After brain-gen's FlatGPTRVQ ("Scaling Next-Brain-Token
    Prediction for MEG", arXiv 2601.20138).
    """

    Config: ClassVar[type[FlatGPTRVQConfig]] = FlatGPTRVQConfig
    label: ClassVar[str] = "flatgpt_rvq"

    def __init__(self, config: FlatGPTRVQConfig) -> None:
        super().__init__(config)
        cfg = config
        self.levels = cfg.code_levels
        self.latents = cfg.n_latents
        self.codes = nn.Embedding(self.levels * cfg.vocab_size, cfg.d_model)
        self.register_buffer(
            "offsets", level_offsets(cfg.n_channels, self.levels, cfg.vocab_size), False
        )
        self.context = ContextEmbedding(self.latents, cfg.n_conditions, cfg.n_subjects, cfg.d_model)
        self.heads = None
        if not cfg.tie_level_heads:
            self.heads = nn.Parameter(torch.empty(self.levels, cfg.vocab_size, cfg.d_model))
            nn.init.normal_(self.heads, 0.0, 0.02)
        for module in (self.codes, self.context):
            module.apply(lambda m: gpt_init(m, 0.02))
        self.add_code_layers(cfg.d_model)
        self._parameters_logged(f", {self.levels} levels x {self.latents} latents")

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> FlatGPTRVQConfig:
        base = FlatGPT.example_config().model_dump(exclude={"tie_embeddings"})
        return cls.Config(**{**base, "n_channels": 6, "code_levels": 2, "backbone": "qwen2_5_vl"})

    def _run(
        self, inputs: Any, state: Any, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, Any]:
        batch = self.parse(inputs)
        # (B, N, T, D): each row embedded by its level's table, a latent's levels summed
        h = fold_levels(self.codes(batch.x + self.offsets), self.levels)
        extra = self.context(batch, self.label)
        if extra is not None:
            h = h + extra
        hidden, new_state = self._backbone_pass(
            h, state, cache, self._past_steps(state, self.latents)
        )
        weight = self.codes.weight.reshape(self.levels, self.config.vocab_size, -1)
        if self.heads is not None:
            weight = self.heads
        return self.head_logits(level_logits(hidden, weight), prior), new_state


class FlatGPTEmbedsRVQ(FlatGPTEmbeds):
    """One position per time step over residual-quantiser codes, one head per level.

    As :class:`FlatGPTEmbeds` (every code row its own table, summed into the step's input),
    but a row's logits come from its latent's output embedding and its level's head: row
    ``l * n_latents + j`` is level ``l`` of latent ``j``, and ``code_levels`` is filled from
    the code dataset. After brain-gen's FlatGPTEmbedsRVQ, the paper's model ("Scaling
    Next-Brain-Token Prediction for MEG", arXiv 2601.20138).
    """

    Config: ClassVar[type[BackboneConfig]] = FlatGPTEmbedsRVQConfig
    label: ClassVar[str] = "flatgpt_embeds_rvq"

    def __init__(self, config: FlatGPTEmbedsRVQConfig) -> None:
        super().__init__(config)
        self.levels = config.code_levels
        self.latents = config.n_latents
        self.out_channels = nn.Embedding(self.latents, config.d_model)
        self.level_heads = nn.Parameter(torch.empty(self.levels, config.vocab_size, config.d_model))
        nn.init.normal_(self.out_channels.weight, 0.0, 0.02)
        nn.init.normal_(self.level_heads, 0.0, 0.02)
        del self.head

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BackboneConfig:
        base = FlatGPTEmbeds.example_config().model_dump()
        return cls.Config(**{**base, "n_channels": 6, "code_levels": 2})

    def _logits(self, hidden: torch.Tensor, prior: Prior | None) -> torch.Tensor:
        per_latent = self.out_norm(hidden[:, None] + self.out_channels.weight[None, :, None])
        return self.head_logits(level_logits(per_latent, self.level_heads), prior)
