"""Torch-free configurations of the ephys-eval evaluators, and their registrations.

Validating an ``evaluation`` section needs only these; the evaluators (which import scipy,
matplotlib and torch) are imported when they run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ephys_core.components import ComponentConfig, LazyComponent

__all__ = ["TokenForecastConfig", "token_forecast"]


class TokenForecastConfig(ComponentConfig):
    """Parameters of :class:`ephys_eval.token_forecast.TokenForecast`."""

    max_batches: int = Field(50, ge=1, description="Teacher-forced batches scored.")
    batch_size: int = Field(16, ge=1, description="Windows per teacher-forced batch.")
    stats_batches: int = Field(
        50, ge=1, description="Training batches counted for the baselines' statistics."
    )
    n_contexts: int = Field(8, ge=1, description="Real contexts rolled out.")
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
    use_cache: bool = Field(True, description="Use the model's key/value cache.")
    seed: int = Field(0, description="Seed of context choice and sampling.")


token_forecast = LazyComponent("ephys_eval.token_forecast:TokenForecast", TokenForecastConfig)
