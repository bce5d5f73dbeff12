"""Huber loss for continuous forecasts."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from ephys_core.components import Component, ComponentConfig


class SmoothL1(Component):
    """Smooth L1 (Huber) loss between predicted and true signals, with MAE as a metric."""

    class Config(ComponentConfig):
        beta: float = Field(1.0, gt=0, description="Where the loss turns from quadratic to linear.")

    metrics: ClassVar[tuple[str, ...]] = ("mae",)

    def __init__(self, config: Config) -> None:
        self.config = config

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = torch.nn.functional.smooth_l1_loss(outputs, targets, beta=self.config.beta)
        return {"loss": loss, "mae": (outputs - targets).abs().mean().detach()}

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = torch.randn(batch_size, 4, 16, requires_grad=True)
        return outputs, torch.randn(batch_size, 4, 16)
