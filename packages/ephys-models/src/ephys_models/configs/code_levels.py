"""The ``code_levels`` field of token models over residual-quantiser codes (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field, model_validator

from ephys_models.configs.token import TokenModelConfig

__all__ = ["CodeLevelsConfig"]


class CodeLevelsConfig(TokenModelConfig):
    """Codes of a residual quantiser: ``code_levels`` levels of the code rows.

    A brainomni or braintokmix code dataset (``ephys tokenizer encode``) holds
    ``code_levels * n_latents`` rows, level by level: row ``l * n_latents + j`` is level ``l``
    of latent ``j``. The training engine fills ``code_levels`` from the data spec when the run
    configuration leaves it unset (``ephys_models.training.binding``). Mix it in before the
    model's other configuration base: ``class MyConfig(CodeLevelsConfig, AttentionConfig)``.
    """

    code_levels: int = Field(
        1,
        ge=1,
        description="Residual-quantiser levels of the code rows (filled from the data: "
        "a brainomni or braintokmix code dataset's levels). The rows are level by level: "
        "row l * n_latents + j is level l of latent j.",
    )

    @property
    def n_latents(self) -> int:
        """Latents of the tokenizer: code rows per level."""
        return self.n_channels // self.code_levels

    @model_validator(mode="after")
    def _levels_divide_rows(self) -> Self:
        if self.n_channels % self.code_levels:
            raise ValueError(
                f"code_levels ({self.code_levels}) must divide the code rows n_channels "
                f"({self.n_channels})"
            )
        return self

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Also: the data's codes must have ``code_levels`` levels."""
        problems = super().check_data(data_spec)
        levels = data_spec.get("code_levels")
        if levels is not None and int(levels) != self.code_levels:
            problems.append(
                f"code_levels is {self.code_levels}, but the data's codes have {int(levels)} "
                "levels (leave code_levels unset to take it from the data)"
            )
        return problems
