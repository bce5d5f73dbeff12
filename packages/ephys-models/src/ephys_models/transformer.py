"""ephys's own decoder transformer, for the models that do not use a Hugging Face backbone.

Pre-norm blocks (RMSNorm) of attention and a SwiGLU MLP or a mixture of experts, with rotary
positions over time steps, grouped-query attention, a block-causal mask (``n`` tokens per time
step see each other and the past), a sliding window with attention sinks, optional learned
sink logits (a per-head "attend to nothing" option, as in gpt-oss), optional FiLM
modulation of every block and a low-rank attention-logit bias supplied by the model. Generation
keeps each layer's keys and values (:class:`DecoderState`).

torch is imported at module level: ephys imports this module only when a model is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ephys_models.configs.decoder import DecoderConfig

__all__ = [
    "Decoder",
    "DecoderModel",
    "DecoderState",
    "MixtureOfExperts",
    "block_causal_mask",
    "load_balancing_loss",
]


def block_causal_mask(
    batch: int,
    n_channels: int,
    new_steps: int,
    past_steps: int = 0,
    device: Any = None,
    window: int | None = None,
    sinks: int = 0,
) -> torch.Tensor:
    """Boolean ``(B, 1, new * C, (past + new) * C)`` mask: a token of step ``t`` may attend to
    every token of steps ``<= t`` (``True``), none of later steps; with a ``window``, only to
    steps ``> t - window``, and always to the first ``sinks`` steps."""
    query = torch.arange(past_steps, past_steps + new_steps, device=device)
    key = torch.arange(past_steps + new_steps, device=device)
    allowed = key[None, :] <= query[:, None]
    if window is not None:
        allowed &= (key[None, :] > query[:, None] - window) | (key[None, :] < sinks)
    allowed = allowed.repeat_interleave(n_channels, 0).repeat_interleave(n_channels, 1)
    return allowed[None, None].expand(batch, 1, -1, -1)


def load_balancing_loss(router_logits: list[torch.Tensor], top_k: int) -> torch.Tensor:
    """The Switch Transformer's load-balancing loss over the routers of every MoE layer
    (``(tokens, experts)`` logits each), by the Hugging Face implementation: ``top_k`` when
    the experts share the tokens evenly, larger when a few take most of them."""
    from transformers.models.qwen3_moe.modeling_qwen3_moe import load_balancing_loss_func

    n_experts = router_logits[0].shape[-1]
    return load_balancing_loss_func(tuple(router_logits), n_experts, top_k)


@dataclass
class DecoderState:
    """What a :class:`Decoder` keeps between generation calls.

    Attributes
    ----------
    kv
        Per layer, keys and values ``(N, kv_heads, tokens, head_dim)``.
    steps
        Time steps cached.
    extra
        What the model keeps beside them (e.g. the condition labels of the cached steps).
    """

    kv: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    steps: int = 0
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class _Attention(nn.Module):
    def __init__(self, cfg: DecoderConfig, learned_sinks: bool) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.n_kv = cfg.n_kv_heads or cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.kv = nn.Linear(cfg.d_model, 2 * self.n_kv * self.head_dim, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout
        self.sinks = nn.Parameter(torch.zeros(cfg.n_heads)) if learned_sinks else None

    def forward(
        self,
        h: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        past: tuple[torch.Tensor, torch.Tensor] | None,
        qk_extra: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        n, length, d = h.shape
        q = self.q(h).reshape(n, length, self.n_heads, self.head_dim).transpose(1, 2)
        k, v = (
            t.reshape(n, length, self.n_kv, self.head_dim).transpose(1, 2)
            for t in self.kv(h).chunk(2, dim=-1)
        )
        q, k = _rotate(q, *rope), _rotate(k, *rope)
        scale = self.head_dim**-0.5
        if qk_extra is not None:  # extra query/key dims: a low-rank additive logit term
            q = torch.cat([q, qk_extra[0].transpose(1, 2) / scale], dim=-1)
            k = torch.cat([k, qk_extra[1].transpose(1, 2)], dim=-1)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        keys, values = k, v
        if self.n_kv != self.n_heads:  # grouped-query attention: share each key/value head
            groups = self.n_heads // self.n_kv
            keys, values = keys.repeat_interleave(groups, 1), values.repeat_interleave(groups, 1)
        if self.sinks is not None:  # a key of zeros whose logit is the head's sink value
            assert mask is not None, "learned sinks need an explicit mask"
            keys = F.pad(keys, (0, 0, 1, 0))
            values = F.pad(values, (0, 0, 1, 0))
            # (1, H, L, 1 + keys): the same for every sequence, broadcast over the batch
            sink = self.sinks.to(q.dtype).reshape(1, -1, 1, 1).expand(1, -1, length, 1)
            logits = _additive(mask, q.dtype)
            logits = logits.expand(logits.shape[0], self.n_heads, length, -1)
            mask = torch.cat([sink.expand(logits.shape[0], -1, -1, -1), logits], dim=-1)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            q, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=mask is None, scale=scale
        )
        return self.proj(out.transpose(1, 2).reshape(n, length, d)), (k, v)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean (``True`` = attend) or additive mask as additive logits."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, float("-inf")
        )
    return mask.to(dtype)


class _SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * hidden, bias=False)
        self.proj = nn.Linear(hidden, d_model, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return self.proj(F.silu(gate) * up)


class MixtureOfExperts(nn.Module):
    """Top-k routed SwiGLU experts; the router's logits of the last call are kept
    (``router_logits``) for the load-balancing loss.

    Each token is processed by its ``top_k`` experts, weighted by the router's renormalised
    probabilities; tokens are independent, so the layer is as causal as the rest.
    """

    def __init__(self, d_model: int, hidden: int, n_experts: int, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.gate_up = nn.Parameter(torch.empty(n_experts, d_model, 2 * hidden))
        self.down = nn.Parameter(torch.empty(n_experts, hidden, d_model))
        nn.init.normal_(self.gate_up, 0.0, 0.02)
        nn.init.normal_(self.down, 0.0, 0.02)
        self.router_logits: torch.Tensor | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        shape = h.shape
        x = h.reshape(-1, shape[-1])
        logits = self.router(x)
        self.router_logits = logits
        weights, chosen = torch.softmax(logits.float(), dim=-1).topk(self.top_k, dim=-1)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x)
        for expert in range(self.gate_up.shape[0]):
            rows, slot = torch.nonzero(chosen == expert, as_tuple=True)
            if rows.numel() == 0:
                continue
            gate, up = (x[rows] @ self.gate_up[expert]).chunk(2, dim=-1)
            y = (F.silu(gate) * up) @ self.down[expert]
            out.index_add_(0, rows, y * weights[rows, slot, None])
        return out.reshape(shape)


class _Block(nn.Module):
    def __init__(self, cfg: DecoderConfig, learned_sinks: bool) -> None:
        super().__init__()
        self.norm_attn = nn.RMSNorm(cfg.d_model)
        self.attn = _Attention(cfg, learned_sinks)
        self.norm_mlp = nn.RMSNorm(cfg.d_model)
        self.mlp: nn.Module
        if cfg.mlp == "moe":
            self.mlp = MixtureOfExperts(
                cfg.d_model,
                cfg.expert_ffn_mult * cfg.d_model,
                cfg.n_experts,
                cfg.experts_per_token,
            )
        else:
            self.mlp = _SwiGLU(cfg.d_model, cfg.ffn_mult * cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        h: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        past: tuple[torch.Tensor, torch.Tensor] | None,
        film: torch.Tensor | None,
        qk_extra: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        x = self.norm_attn(h)
        scale_a = shift_a = scale_m = shift_m = None
        if film is not None:  # (N, L, 4 D): scale and shift of both branches' inputs
            scale_a, shift_a, scale_m, shift_m = film.chunk(4, dim=-1)
            x = x * (1 + scale_a) + shift_a
        update, kv = self.attn(x, rope, mask, past, qk_extra)
        h = h + self.drop(update)
        x = self.norm_mlp(h)
        if film is not None:
            x = x * (1 + scale_m) + shift_m
        return h + self.drop(self.mlp(x)), kv


class Decoder(nn.Module):
    """A stack of decoder blocks over ``tokens_per_step`` tokens per time step.

    Parameters
    ----------
    config
        Width, depth, heads, window and MLP (:class:`~ephys_models.configs.decoder.
        DecoderConfig`); ``context_length`` is the longest run of time steps.
    label
        The model's name, for error messages.
    learned_sinks
        Give every head a learned sink logit (a zero key/value it may attend to instead).
    """

    def __init__(self, config: DecoderConfig, label: str, learned_sinks: bool = False) -> None:
        super().__init__()
        self.config = config
        self.label = label
        self.learned_sinks = learned_sinks
        self.blocks = nn.ModuleList(_Block(config, learned_sinks) for _ in range(config.n_layers))
        self.norm = nn.RMSNorm(config.d_model)
        head_dim = config.d_model // config.n_heads
        inv_freq = config.rope_theta ** (-torch.arange(0, head_dim, 2).float() / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith(".down"):
                nn.init.normal_(param, 0.0, 0.02 / math.sqrt(2 * config.n_layers))
            elif param.ndim == 2 and "norm" not in name:
                nn.init.normal_(param, 0.0, 0.02)

    @property
    def moe_layers(self) -> list[MixtureOfExperts]:
        return [b.mlp for b in self.blocks if isinstance(b.mlp, MixtureOfExperts)]

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The weighted load-balancing loss of the last forward pass (``None`` without MoE)."""
        layers = self.moe_layers
        logits = [layer.router_logits for layer in layers if layer.router_logits is not None]
        if not logits:
            return None
        cfg = self.config
        return cfg.moe_aux_weight * load_balancing_loss(logits, cfg.experts_per_token)

    def forward(
        self,
        h: torch.Tensor,
        *,
        tokens_per_step: int = 1,
        state: DecoderState | None = None,
        cache: bool = False,
        film: torch.Tensor | None = None,
        qk_extra: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, DecoderState | None]:
        """Tokens ``(N, steps * tokens_per_step, D)``, step by step -> hidden states of the
        same shape and (with ``cache``) the state to continue from.

        ``film`` is ``(N, L, 4 D)`` per-token modulation (scale and shift of the attention's
        and the MLP's inputs). ``qk_extra`` are ``(N, L, heads, r)`` and ``(N, L, kv_heads,
        r)`` vectors ``u``, ``w`` of each token: the attention logit of query ``i`` and key
        ``j`` gains ``u_i . w_j`` (a low-rank bias, e.g. from condition labels; the keys'
        vectors are cached with them)."""
        n, length, _ = h.shape
        if length % tokens_per_step:
            raise ValueError(
                f"{self.label}: {length} tokens are not whole steps of {tokens_per_step}"
            )
        steps = length // tokens_per_step
        past = 0 if state is None else state.steps
        if past + steps > self.config.context_length:
            raise ValueError(
                f"{self.label}: {past + steps} time steps exceed context_length="
                f"{self.config.context_length}; use a shorter window or a larger "
                "context_length"
            )
        time = torch.arange(past, past + steps, device=h.device).repeat_interleave(tokens_per_step)
        angles = time[:, None].float() * self.inv_freq[None, :]
        rope = (angles.cos().to(h.dtype), angles.sin().to(h.dtype))
        mask = self._mask(tokens_per_step, steps, past, h.device)
        kv = []
        for i, block in enumerate(self.blocks):
            h, layer_kv = block(h, rope, mask, state.kv[i] if state else None, film, qk_extra)
            kv.append(layer_kv)
        new_state = None
        if cache:
            new_state = DecoderState(kv, past + steps, dict(state.extra) if state else {})
        return self.norm(h), new_state

    def _mask(
        self,
        tokens_per_step: int,
        steps: int,
        past: int,
        device: Any,
    ) -> torch.Tensor | None:
        """``None`` where plain causal attention does (SDPA's fast path), else the mask."""
        cfg = self.config
        plain = tokens_per_step == 1 and past == 0 and cfg.sliding_window is None
        if plain and not self.learned_sinks:
            return None
        return block_causal_mask(
            1, tokens_per_step, steps, past, device, cfg.sliding_window, cfg.attention_sinks
        )


class DecoderModel:
    """Mixin of a model whose network is a :class:`Decoder` in ``self.decoder``: its
    ``auxiliary_loss`` is the decoder's (the experts' load balancing, for ``mlp: moe``)."""

    decoder: Decoder

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The experts' weighted load-balancing loss of the last forward pass (MoE only)."""
        return self.decoder.auxiliary_loss()
