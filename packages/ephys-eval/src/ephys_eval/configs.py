"""Torch-free configurations of the ephys-eval evaluators, and their registrations.

Validating an ``evaluation`` section needs only these; the evaluators (which import scipy,
matplotlib and torch) are imported when they run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ephys_core.components import ComponentConfig, LazyComponent

__all__ = ["DecodedForecastConfig", "TokenForecastConfig", "decoded_forecast", "token_forecast"]


class _BaselineFit(ComponentConfig):
    """How the classical baselines are fitted on the training split."""

    fit_segments: int = Field(
        64, ge=2, description="Training segments the baselines are fitted on."
    )
    fit_seconds: float = Field(
        20.0, gt=0, description="Length of each fitting segment (shorter sessions: all of it)."
    )
    ar_max_order: int = Field(
        96,
        ge=1,
        description="Largest AR order tried (chosen by AIC); never more than the scoring "
        "window, whose forecasts see no further back.",
    )
    var_orders: list[int] = Field(
        default_factory=lambda: [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96],
        min_length=1,
        description="VAR orders tried (chosen, with the ridge, on held-out training segments); "
        "those longer than the scoring window are skipped.",
    )


class _Rollouts(ComponentConfig):
    """Which rollouts are drawn, how, and how they are scored."""

    n_contexts: int = Field(32, ge=4, description="Real contexts rolled out.")
    context_seconds: float | None = Field(
        None, gt=0, description="Context length; the training window by default."
    )
    horizon_seconds: float = Field(2.0, gt=0, description="Length of each rollout.")
    strategy: Literal["argmax", "multinomial", "top_k", "top_p"] = Field(
        "multinomial", description="Sampling strategy of the rollouts."
    )
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_k: int = Field(50, ge=1, description="Tokens kept by top_k sampling.")
    top_p: float = Field(0.9, gt=0, le=1, description="Mass kept by top_p sampling.")
    innovations: Literal["correlated", "independent"] = Field(
        "correlated",
        description="Draw the channels of a step together (a Gaussian copula with the "
        "innovation correlation the model estimated) or each on its own.",
    )
    use_cache: bool = Field(True, description="Use the model's key/value cache.")
    n_boot: int = Field(200, ge=10, description="Bootstrap resamples of every interval.")
    seed: int = Field(0, description="Seed of the windows, contexts, sampling and bootstrap.")


class TokenForecastConfig(_BaselineFit, _Rollouts):
    """Parameters of :class:`ephys_eval.token_forecast.TokenForecast`."""

    max_windows: int = Field(
        256, ge=4, description="Windows (of the training length) scored teacher-forced."
    )
    batch_size: int = Field(32, ge=1, description="Windows per model batch.")
    baselines: list[Literal["ar", "var", "persistence", "token_frequency"]] = Field(
        default_factory=lambda: ["ar", "var", "persistence", "token_frequency"],
        description="Baselines scored beside the model (see ephys_eval.baselines).",
    )


class DecodedForecastConfig(_BaselineFit, _Rollouts):
    """Parameters of :class:`ephys_eval.decoded_forecast.DecodedForecast`."""

    baselines: list[Literal["ar", "var"]] = Field(
        default_factory=lambda: ["ar", "var"],
        description="Baselines fitted on the source recordings and rolled out beside the model.",
    )
    physical_units: bool = Field(
        True,
        description="Score in physical units (tesla, volt), undoing the source's normalisation.",
    )


token_forecast = LazyComponent("ephys_eval.token_forecast:TokenForecast", TokenForecastConfig)
decoded_forecast = LazyComponent(
    "ephys_eval.decoded_forecast:DecodedForecast", DecodedForecastConfig
)
