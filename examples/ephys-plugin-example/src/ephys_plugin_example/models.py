"""A small causal temporal convolutional network (TCN) forecaster.

torch is imported at module level here: ephys imports this module only when the model is used.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ephys_core.components import Component
from ephys_plugin_example.configs import TinyTCNConfig


class TinyTCN(Component, nn.Module):
    """Causal dilated convolutions forecasting the next sample of every channel.

    Input ``(B, C, T)`` continuous signals; output ``(B, C, T)``, where output ``t`` predicts
    input ``t + 1`` and depends only on inputs ``<= t``.
    """

    Config: ClassVar[type[TinyTCNConfig]] = TinyTCNConfig
    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -1

    def __init__(self, config: TinyTCNConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = nn.Conv1d(config.n_channels, config.hidden, 1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(config.hidden, config.hidden, config.kernel_size, dilation=2**i)
            for i in range(config.n_blocks)
        )
        self.out = nn.Conv1d(config.hidden, config.n_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for i, conv in enumerate(self.blocks):
            pad = (self.config.kernel_size - 1) * 2**i  # left padding only: causal
            h = h + torch.tanh(conv(nn.functional.pad(h, (pad, 0))))
        return self.out(h)

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        return torch.randn(batch_size, self.config.n_channels, 32)

    def output_shape(self, inputs: torch.Tensor) -> tuple[int, ...]:
        return tuple(inputs.shape)
