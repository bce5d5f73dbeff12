"""The model's configuration and its registration, in a module that imports no torch.

The ``tiny_tcn`` entry point names the declaration below, so ``ephys config validate`` and the
first checks of ``ephys train`` validate ``model.params`` without importing torch; ephys
imports ``ephys_plugin_example.models`` only when it builds the model.
"""

from __future__ import annotations

from pydantic import Field

from ephys_core.components import ComponentConfig, LazyComponent


class TinyTCNConfig(ComponentConfig):
    """Parameters of :class:`ephys_plugin_example.models.TinyTCN`."""

    n_channels: int = Field(4, gt=0, description="Input and output channels.")
    hidden: int = Field(16, gt=0, description="Hidden channels of each block.")
    kernel_size: int = Field(3, ge=2, description="Temporal kernel size.")
    n_blocks: int = Field(3, ge=1, description="Blocks; dilation doubles per block.")


tiny_tcn = LazyComponent(
    "ephys_plugin_example.models:TinyTCN", TinyTCNConfig, metadata={"causal": True}
)
