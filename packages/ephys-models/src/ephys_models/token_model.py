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

from typing import Any, ClassVar

import torch
from torch import nn

from ephys_core.components import Component
from ephys_models._layers import TokenBatch, example_tokens, parse_tokens
from ephys_models.codes import AmplitudeEmbedding, MixtureHead
from ephys_models.configs.token import TokenModelConfig
from ephys_models.generation import TokenForecaster

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

    def embed_codes(
        self, table: torch.nn.Embedding, codes: torch.Tensor, offsets: Any = None
    ) -> torch.Tensor:
        """``table`` vectors of ``codes`` (rows shifted by ``offsets``), plus the amplitude map."""
        h = table(codes if offsets is None else codes + offsets)
        return h if self.amplitude is None else h + self.amplitude(codes)

    def code_logits(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``(..., V)`` logits: the mixture head's log-probabilities, or ``hidden @ weight.T``."""
        if self.mixture is not None:
            return self.mixture(hidden)
        return torch.nn.functional.linear(hidden, weight)

    @property
    def max_context(self) -> int:  # type: ignore[override]
        """Time steps the model attends to (the generation window): ``context_length``."""
        return int(self.config.context_length)

    def parse(self, inputs: Any) -> TokenBatch:
        """Ids, condition labels and subject indices of ``inputs``, with their shapes checked."""
        return parse_tokens(inputs, self.config.n_channels, self.label)

    def _run(self, inputs: Any, state: Any, cache: bool) -> tuple[torch.Tensor, Any]:
        """Logits ``(B, C, T, V)`` for the new time steps ``inputs`` after the cached ``state``.

        Parameters
        ----------
        inputs
            ``(B, C, T)`` ids or a mapping with ``"x"``: the steps that follow ``state``.
        state
            What the previous call returned (``None``: nothing before ``inputs``).
        cache
            Whether to return a state for a following call (generation) or ``None``.
        """
        raise NotImplementedError

    def forward(self, inputs: Any) -> torch.Tensor:
        """Logits ``(B, C, T, V)`` for token ids ``(B, C, T)`` (or a mapping with ``"x"``)."""
        return self._run(inputs, None, False)[0]

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
    def _prefill(self, inputs: Any) -> tuple[torch.Tensor, Any]:
        logits, state = self._run(inputs, None, True)
        return logits[:, :, -1], state

    def _step(self, inputs: Any, state: Any) -> tuple[torch.Tensor, Any]:
        logits, state = self._run(inputs, state, True)
        return logits[:, :, -1], state
