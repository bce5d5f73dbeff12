"""Autoregressive generation for token models: sampling strategies and the forecasting loop.

Every token forecaster in ephys exposes one API, :meth:`TokenForecaster.forecast`: given a
context of token ids ``(B, C, T_ctx)`` it returns ``(B, C, n_steps)`` further ids. Models
implement two small hooks and inherit the loop:

``_prefill(inputs) -> (logits, state)``
    Run the model on a whole window (``(B, C, T)`` ids or a mapping with ``"x"``) and return the
    logits of its last time step ``(B, C, V)`` and whatever state the model caches (for
    transformers, the attention keys and values).
``_step(inputs, state) -> (logits, state)``
    Consume one new time step (``(B, C, 1)`` ids or a mapping) given the cached state and
    return its logits ``(B, C, V)`` and the updated state.

When the model's context window (``max_context``) fills up, the loop slides it: it keeps the
last ``max_context - slide`` steps and re-fills the cache from them, so the cost of each
generated step stays bounded however long the rollout. With ``use_cache=False`` every step
re-runs the model on the current window, which is the reference the cache is tested against.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from ephys_core.components import ComponentConfig

__all__ = ["Sampler", "TokenForecaster", "sample"]


class Sampler(ComponentConfig):
    """How the next token is chosen from logits."""

    strategy: Literal["argmax", "multinomial", "top_k", "top_p"] = Field(
        "multinomial", description="argmax, multinomial (roulette), top_k or top_p (nucleus)."
    )
    temperature: float = Field(1.0, gt=0, description="Logits are divided by this first.")
    top_k: int = Field(50, ge=1, description="Tokens kept by `top_k`.")
    top_p: float = Field(0.9, gt=0, le=1, description="Probability mass kept by `top_p`.")
    seed: int | None = Field(None, description="Seed of the sampling generator.")
    innovations: Literal["correlated", "independent"] = Field(
        "correlated",
        description="`correlated`: the channels of a time step are drawn together, through "
        "a Gaussian copula with the correlation of the innovations the model estimated on "
        "its training data (a model without one draws them independently); `independent`: "
        "each channel on its own.",
    )


def sample(
    logits: torch.Tensor,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """Choose one token per row of ``logits`` ``(..., V)``; returns int64 ``(...)``.

    ``uniforms`` ``(...)`` in ``[0, 1)``, when given, choose by the inverse of each row's
    cumulative distribution instead of independent draws (the same distribution per row;
    dependent uniforms make dependent tokens: the copula of :meth:`TokenForecaster.forecast`).
    """
    sampler = sampler or Sampler()
    if sampler.strategy == "argmax":
        return logits.argmax(dim=-1)
    scaled = logits.float() / sampler.temperature
    shape = scaled.shape
    flat = scaled.reshape(-1, shape[-1])
    if sampler.strategy == "top_k":
        k = min(sampler.top_k, flat.shape[-1])
        kth = flat.topk(k, dim=-1).values[:, -1:]
        flat = flat.masked_fill(flat < kth, float("-inf"))
    elif sampler.strategy == "top_p":
        sorted_logits, order = flat.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # drop a token when the mass before it already reaches top_p (the first always stays)
        drop = (cumulative - sorted_logits.softmax(dim=-1)) >= sampler.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        flat = torch.full_like(flat, float("-inf")).scatter(-1, order, sorted_logits)
    probs = flat.softmax(dim=-1)
    if uniforms is not None:
        cumulative = probs.cumsum(dim=-1)
        u = uniforms.reshape(-1, 1).to(cumulative) * cumulative[:, -1:]
        chosen = torch.searchsorted(cumulative, u, right=True).clamp_max(shape[-1] - 1)
        return chosen.reshape(shape[:-1])
    return torch.multinomial(probs, 1, generator=generator).reshape(shape[:-1])


def _take(inputs: Any, start: int, stop: int) -> Any:
    """Slice the time axis of the token ids (and of a ``condition`` track, if given)."""
    if isinstance(inputs, dict):
        out = dict(inputs)
        out["x"] = inputs["x"][..., start:stop]
        if "condition" in inputs:
            out["condition"] = inputs["condition"][..., start:stop]
        return out
    return inputs[..., start:stop]


def _append(inputs: Any, tokens: torch.Tensor, condition: torch.Tensor | None) -> Any:
    if isinstance(inputs, dict):
        out = dict(inputs)
        out["x"] = torch.cat([inputs["x"], tokens], dim=-1)
        if "condition" in inputs:
            out["condition"] = torch.cat([inputs["condition"], condition], dim=-1)
        return out
    return torch.cat([inputs, tokens], dim=-1)


class TokenForecaster:
    """Mixin giving token models the shared :meth:`forecast` loop.

    Subclasses implement :meth:`_prefill` and :meth:`_step` and define ``max_context`` (steps
    the model can attend to). ``slide`` (default a quarter of the window) is how many steps
    are dropped when the window is full.
    """

    max_context: int

    def _prefill(self, inputs: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def _step(self, inputs: Any, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def _slide(self) -> int:
        return max(1, self.max_context // 4)

    def innovation_factor(self) -> torch.Tensor | None:
        """Lower Cholesky factor ``(C, C)`` of the correlation of the channels' innovations,
        or ``None`` (the channels of a step are then drawn independently)."""
        return None

    def _uniforms(
        self, logits: torch.Tensor, sampler: Sampler, generator: torch.Generator | None
    ) -> torch.Tensor | None:
        """Correlated uniforms ``(B, C)`` for one step: ``Phi(L z)``, ``z`` standard normal."""
        factor = self.innovation_factor() if sampler.innovations == "correlated" else None
        if factor is None or sampler.strategy == "argmax":
            return None
        z = torch.randn(logits.shape[:2], generator=generator, device=logits.device)
        return torch.special.ndtr(z @ factor.to(z).T)

    @torch.no_grad()
    def forecast(
        self,
        context: Any,
        n_steps: int,
        *,
        sampler: Sampler | None = None,
        use_cache: bool = True,
        future_condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate ``n_steps`` time steps after ``context``.

        Parameters
        ----------
        context
            ``(B, C, T_ctx)`` token ids, or a mapping with ``"x"`` and optionally
            ``"condition"`` ``(B, T_ctx)`` and ``"subject"`` ``(B,)``.
        n_steps
            Steps to generate.
        sampler
            Sampling strategy (multinomial at temperature 1 by default).
        use_cache
            Reuse the model's cached state between steps.
        future_condition
            ``(B, n_steps)`` condition labels of the generated steps; by default the last
            context label is repeated.

        Returns
        -------
        torch.Tensor
            ``(B, C, n_steps)`` int64 generated ids.
        """
        sampler = sampler or Sampler()
        generator = None
        x = context["x"] if isinstance(context, dict) else context
        if sampler.seed is not None:
            generator = torch.Generator(device=x.device).manual_seed(sampler.seed)
        if isinstance(context, dict) and "condition" in context and future_condition is None:
            future_condition = context["condition"][..., -1:].expand(-1, n_steps)
        window = _take(context, max(0, x.shape[-1] - self.max_context), x.shape[-1])
        out = []
        logits, state = self._prefill(window) if use_cache else (None, None)
        for step in range(n_steps):
            if not use_cache:
                logits, _ = self._prefill(window)
            uniforms = self._uniforms(logits, sampler, generator)
            token = sample(logits, sampler, generator, uniforms).unsqueeze(-1)  # (B, C, 1)
            out.append(token)
            if step == n_steps - 1:
                break
            cond = None if future_condition is None else future_condition[..., step : step + 1]
            window = _append(window, token, cond)
            length = (window["x"] if isinstance(window, dict) else window).shape[-1]
            if length > self.max_context:
                keep = self.max_context - self._slide() if use_cache else self.max_context
                window = _take(window, length - keep, length)
                if use_cache:
                    logits, state = self._prefill(window)
                    continue
            if use_cache:
                logits, state = self._step(_take(window, length - 1, length), state)
        return torch.cat(out, dim=-1)
