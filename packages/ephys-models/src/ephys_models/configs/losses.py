"""Configurations and registrations of the losses (the losses: :mod:`ephys_models.losses`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ephys_core.components import ComponentConfig, LazyComponent

__all__ = ["CrossEntropyConfig", "MSEConfig", "cross_entropy", "mse"]


class CrossEntropyConfig(ComponentConfig):
    """Parameters of :class:`ephys_models.losses.CrossEntropy`."""

    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Mass spread uniformly over the vocabulary."
    )

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Cross-entropy needs token targets."""
        if data_spec.get("vocab_size") is None:
            return [
                "cross_entropy scores token predictions, but the data holds continuous "
                "signals; use `mse`, or a token dataset"
            ]
        return []


class MSEConfig(ComponentConfig):
    """Parameters of :class:`ephys_models.losses.MSE` (none)."""

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Mean squared error needs continuous targets."""
        if data_spec.get("vocab_size") is not None:
            return [
                "mse compares continuous signals, but the data holds token ids; use "
                "`cross_entropy`, or a continuous dataset"
            ]
        return []


cross_entropy = LazyComponent(
    "ephys_models.losses:CrossEntropy",
    CrossEntropyConfig,
    metadata={"metrics": ("accuracy", "mse")},
)
mse = LazyComponent("ephys_models.losses:MSE", MSEConfig, metadata={"metrics": ("mae",)})
