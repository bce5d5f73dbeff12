"""Fields and data checks shared by the token models' configurations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig

__all__ = ["AttentionConfig", "TokenModelConfig", "WindowedTokenModelConfig"]


#: the sizes the transformer token models' example configurations share (tiny: the
#: conformance suite builds and runs them in milliseconds)
TINY_EXAMPLE: dict[str, int] = {
    "n_channels": 3,
    "vocab_size": 16,
    "n_conditions": 2,
    "n_subjects": 2,
    "d_model": 16,
    "n_layers": 2,
    "n_heads": 2,
    "context_length": 32,
}


class TokenModelConfig(ComponentConfig):
    """Fields every token model shares; the engine fills them from the dataset when unset."""

    n_channels: int = Field(4, gt=0, description="Channels (filled from the dataset).")
    vocab_size: int = Field(
        256, gt=1, description="Token vocabulary size V (filled from the dataset)."
    )
    n_conditions: int = Field(
        0,
        ge=0,
        description="Condition classes; labels lie in [0, n_conditions] with 0 = no "
        "condition. 0 disables condition embeddings (filled from the dataset).",
    )
    n_subjects: int = Field(
        0,
        ge=0,
        description="Subjects, indexed [0, n_subjects), for subject embeddings; 0 disables "
        "them (filled from the dataset).",
    )
    embedding: Literal["table", "amplitude"] = Field(
        "table",
        description="`table`: a learned vector per code; `amplitude`: plus a learned linear "
        "map of the code's mu-law amplitude (codes must be mu-law).",
    )
    head: Literal["softmax", "mixture"] = Field(
        "softmax",
        description="`softmax` over the V codes, or `mixture`: a discretised Gaussian "
        "mixture over the amplitude, evaluated on each code's bin (codes must be mu-law).",
    )
    mixture_components: int = Field(
        1,
        ge=1,
        le=32,
        description="Gaussian components of the `mixture` head (1: a discretised Gaussian, "
        "as cheap as a softmax; more for multimodal forecasts, at a cost).",
    )
    highway: Literal["none", "ar", "var"] = Field(
        "none",
        description="A linear autoregressive prior fitted by least squares on the training "
        "data before training (`var`: all channels; `ar`: each channel on its own); the "
        "network learns corrections to it (codes must be mu-law). See ephys_models.highway.",
    )
    highway_order: int = Field(
        32, ge=1, le=256, description="Lags p of the highway (lower orders serve short pasts)."
    )
    highway_ridge: float = Field(
        1e-6,
        ge=0,
        description="Ridge strength of the highway's fit, relative to the mean diagonal of "
        "the Gram matrix.",
    )
    highway_fit_batches: int = Field(
        256, gt=0, description="Training batches read to fit the highway."
    )

    @property
    def needs_mulaw_codes(self) -> bool:
        """Whether the embedding, the head or the highway reads codes as mu-law amplitudes."""
        return self.embedding == "amplitude" or self.head == "mixture" or self.highway != "none"

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Why a model with this configuration cannot consume the data, one line per problem.

        Parameters
        ----------
        data_spec
            The dataset's ``data_spec()`` (``n_channels``, ``vocab_size``, ``n_times``, ...).
        """
        problems = []
        vocab = data_spec.get("vocab_size")
        if vocab is None:
            problems.append(
                "the model predicts tokens, but the data holds continuous signals; use a token "
                "dataset (mulaw_next_step, tokens_next_step)"
            )
        elif int(vocab) != self.vocab_size:
            problems.append(
                f"vocab_size is {self.vocab_size}, but the data's codes are 0..{int(vocab) - 1} "
                "(leave vocab_size unset to take it from the data)"
            )
        if self.needs_mulaw_codes and vocab is not None and data_spec.get("codes") != "mulaw":
            problems.append(
                "embedding: amplitude, head: mixture and the highway read the codes as mu-law "
                "amplitudes, but the data does not say its codes are mu-law (codes: "
                f"{data_spec.get('codes')!r}); use embedding: table, head: softmax and "
                "highway: none"
            )
        n_times = data_spec.get("n_times")
        if self.highway != "none" and n_times is not None and int(n_times) <= self.highway_order:
            problems.append(
                f"highway_order is {self.highway_order}, but the data's windows hold only "
                f"{int(n_times)} time steps, too few to fit it; lower highway_order or "
                "lengthen data.dataset.params.window_seconds"
            )
        n_channels = data_spec.get("n_channels")
        if n_channels is not None and int(n_channels) != self.n_channels:
            problems.append(
                f"n_channels is {self.n_channels}, but the data has {int(n_channels)} channels "
                "(leave n_channels unset to take it from the data)"
            )
        for key in ("n_conditions", "n_subjects"):
            wanted = data_spec.get(key)
            if wanted is not None and int(wanted) > getattr(self, key):
                problems.append(
                    f"{key} is {getattr(self, key)}, but the data has {int(wanted)} "
                    f"(leave {key} unset to take it from the data)"
                )
        return problems


class WindowedTokenModelConfig(TokenModelConfig):
    """A token model that attends to at most ``context_length`` time steps."""

    context_length: int = Field(
        512, gt=1, description="Longest input (time steps); also the generation window."
    )

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Also: the data's windows must fit in ``context_length``."""
        problems = super().check_data(data_spec)
        n_times = data_spec.get("n_times")
        if n_times is not None and int(n_times) > self.context_length:
            sfreq = data_spec.get("sfreq")
            seconds = (
                f" ({int(n_times) / float(sfreq):g} s at {float(sfreq):g} Hz)" if sfreq else ""
            )
            problems.append(
                f"context_length is {self.context_length} time steps, shorter than the data's "
                f"windows of {int(n_times)}{seconds}; raise context_length or shorten "
                "data.dataset.params.window_seconds"
            )
        return problems


class AttentionConfig(WindowedTokenModelConfig):
    """A windowed token transformer: ``n_heads`` must divide ``d_model``."""

    d_model: int = Field(256, gt=0, description="Width of the transformer.")
    n_heads: int = Field(8, gt=0, description="Attention heads; must divide d_model.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> Self:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        return self
