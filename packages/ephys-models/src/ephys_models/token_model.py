"""The base class of ephys's token forecasters: what gpt2meg, stgpt2meg and wavenet share.

A token model maps ``(B, C, T)`` integer ids (or a mapping with ``"x"`` and the optional
``"condition"`` ``(B, T)`` and ``"subject"`` ``(B,)`` tracks) to logits ``(B, C, T, V)``, where
output ``t`` predicts the token at ``t + 1`` from inputs ``<= t``. A subclass sets its
``Config`` (a :class:`~ephys_models.configs.token.TokenModelConfig`) and implements one method,
:meth:`TokenModel._run`, which runs the network on new time steps given the state cached by
earlier calls; the base class turns it into ``forward`` and the ``_prefill``/``_step`` hooks of
the shared generation loop (:class:`~ephys_models.generation.TokenForecaster`), and provides
the example input and output shape the conformance suite uses.

torch is imported at module level: ephys imports this module only when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from ephys_core.components import Component
from ephys_models._layers import TokenBatch, example_tokens, parse_tokens
from ephys_models.codes import AmplitudeEmbedding, MixtureHead, Prior
from ephys_models.configs.token import TokenModelConfig
from ephys_models.generation import TokenForecaster
from ephys_models.highway import HighwayState, LinearHighway

__all__ = ["TokenModel"]


class TokenModel(Component, TokenForecaster, nn.Module):
    """Shared behaviour of the token forecasters (see the module documentation).

    Attributes
    ----------
    label
        The model's registry name, used in error messages.
    example_steps
        Time steps of :meth:`example_input` (capped by the generation window).
    """

    Config: ClassVar[type[TokenModelConfig]] = TokenModelConfig
    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -2
    label: ClassVar[str] = "token model"
    example_steps: ClassVar[int] = 16

    config: Any

    def __init__(self, config: TokenModelConfig) -> None:
        super().__init__()
        self.config = config
        self.amplitude: AmplitudeEmbedding | None = None
        self.mixture: MixtureHead | None = None
        self.highway: LinearHighway | None = None
        self.prior_head: MixtureHead | None = None

    def add_code_layers(self, dim: int | None, embed_dim: int | None = None) -> None:
        """Create the optional code-aware layers the configuration asks for.

        Parameters
        ----------
        dim
            Width of the hidden states the head reads (``None``: the model computes the
            mixture's raw parameters itself and calls ``self.mixture.log_probs``).
        embed_dim
            Width of the code embedding (default ``dim``).
        """
        cfg = self.config
        if cfg.embedding == "amplitude":
            self.amplitude = AmplitudeEmbedding(cfg.vocab_size, embed_dim or dim or 0)
        if cfg.head == "mixture":
            self.mixture = MixtureHead(dim, cfg.vocab_size, cfg.mixture_components)
            if self.mixture.proj is not None and cfg.highway != "none":
                self.mixture.init_(self.mixture.proj, prior=True)
        if cfg.highway != "none":
            self.highway = LinearHighway(
                cfg.n_channels, cfg.vocab_size, cfg.highway_order, cfg.highway, cfg.highway_ridge
            )
            if self.mixture is None:  # softmax: the network's logits add to the prior's
                self.prior_head = MixtureHead(None, cfg.vocab_size, 1)

    def embed_codes(
        self, table: torch.nn.Embedding, codes: torch.Tensor, offsets: Any = None
    ) -> torch.Tensor:
        """``table`` vectors of ``codes`` (rows shifted by ``offsets``), plus the amplitude map."""
        h = table(codes if offsets is None else codes + offsets)
        return h if self.amplitude is None else h + self.amplitude(codes)

    def code_logits(
        self, hidden: torch.Tensor, weight: torch.Tensor, prior: Prior | None = None
    ) -> torch.Tensor:
        """``(..., V)`` logits: the mixture head's log-probabilities, or ``hidden @ weight.T``.

        With the highway's ``prior`` (mean and log-sd shaped like ``hidden[..., 0]``), the
        mixture's means and scales are offsets from it, and softmax logits add to its
        discretised Gaussian.
        """
        if self.mixture is not None:
            assert self.mixture.proj is not None, "built without a projection: use head_logits"
            return self.head_logits(self.mixture.proj(hidden), prior)
        return self.head_logits(torch.nn.functional.linear(hidden, weight), prior)

    def head_logits(self, out: torch.Tensor, prior: Prior | None) -> torch.Tensor:
        """``(..., V)`` logits from the head's outputs ``out``: the mixture's ``3 K`` raw
        parameters (offsets from ``prior``), or softmax logits (plus the prior's
        log-probabilities)."""
        if self.mixture is not None:
            return self.mixture.log_probs(out, prior)
        if prior is None or self.prior_head is None:
            return out
        return out.float() + self.prior_head.prior_log_probs(prior)

    # -- the linear highway ---------------------------------------------------------------

    @property
    def needs_data_fit(self) -> bool:
        """Whether the model has a highway still to fit on training data (before training)."""
        return self.highway is not None and not bool(self.highway.fitted)

    def fit_to_data(
        self,
        batches: Iterable[Any],
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """Fit the highway by least squares on training inputs (what the engine calls once,
        before the first step; ``reduce`` sums over processes in distributed training)."""
        if self.highway is None:
            return
        codes = (self.parse(inputs).x for inputs in batches)
        self.highway.fit(codes, self.config.highway_fit_batches, reduce)

    def innovation_factor(self) -> torch.Tensor | None:
        """The fitted highway's residual correlation factor (``None`` without one)."""
        if self.highway is None or self.needs_data_fit:
            return None
        return self.highway.noise_factor

    def _prior(
        self, inputs: Any, state: HighwayState | None
    ) -> tuple[Prior | None, HighwayState | None]:
        if self.highway is None:
            return None, None
        mean, log_scale, state = self.highway(self.parse(inputs).x, state)
        return (mean, log_scale), state

    @property
    def max_context(self) -> int:  # type: ignore[override]
        """Time steps the model attends to (the generation window): ``context_length``."""
        return int(self.config.context_length)

    def parse(self, inputs: Any) -> TokenBatch:
        """Ids, condition labels and subject indices of ``inputs``, with their shapes checked."""
        return parse_tokens(inputs, self.config.n_channels, self.label)

    def _run(
        self, inputs: Any, state: Any, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, Any]:
        """Logits ``(B, C, T, V)`` for the new time steps ``inputs`` after the cached ``state``.

        Parameters
        ----------
        inputs
            ``(B, C, T)`` ids or a mapping with ``"x"``: the steps that follow ``state``.
        state
            What the previous call returned (``None``: nothing before ``inputs``).
        cache
            Whether to return a state for a following call (generation) or ``None``.
        prior
            The highway's mean and log-sd ``(B, C, T)`` for these steps (``None`` without a
            highway), for :meth:`code_logits`.
        """
        raise NotImplementedError

    def _run_step(self, inputs: Any, state: Any, prior: Prior | None) -> tuple[torch.Tensor, Any]:
        """``_run`` for generation after a cached state (a model may do one step cheaper)."""
        return self._run(inputs, state, True, prior)

    def forward(self, inputs: Any) -> torch.Tensor:
        """Logits ``(B, C, T, V)`` for token ids ``(B, C, T)`` (or a mapping with ``"x"``)."""
        prior, _ = self._prior(inputs, None)
        return self._run(inputs, None, False, prior)[0]

    def example_input(self, batch_size: int = 2) -> Any:
        """Random ids ``(B, C, T)`` (a mapping with condition/subject tracks when configured)."""
        cfg = self.config
        return example_tokens(
            batch_size,
            cfg.n_channels,
            min(self.example_steps, self.max_context),
            cfg.vocab_size,
            cfg.n_conditions,
            cfg.n_subjects,
        )

    def output_shape(self, inputs: Any) -> tuple[int, ...]:
        """``(B, C, T, V)`` for inputs of ``(B, C, T)`` ids."""
        x = inputs["x"] if isinstance(inputs, dict) else inputs
        return (*x.shape, self.config.vocab_size)

    # -- generation hooks -----------------------------------------------------------------
    # the state is the network's own cache and the highway's history
    def _prefill(self, inputs: Any) -> tuple[torch.Tensor, Any]:
        prior, highway = self._prior(inputs, None)
        logits, state = self._run(inputs, None, True, prior)
        return logits[:, :, -1], (state, highway)

    def _step(self, inputs: Any, state: Any) -> tuple[torch.Tensor, Any]:
        network, highway = state
        prior, highway = self._prior(inputs, highway)
        logits, network = self._run_step(inputs, network, prior)
        return logits[:, :, -1], (network, highway)
