"""Checkpoint files that appear whole or not at all, inside the run folder.

Lightning's default writer stages a checkpoint in the system's temporary folder and moves it
into place; across file systems that move is a copy, so a process killed during it leaves a
truncated ``last.ckpt`` (and a stray file outside the run). ephys serialises the checkpoint
in memory and writes it through :func:`ephys_core.files.atomic_write_bytes`: a hidden
temporary file next to the checkpoint, fsynced, then renamed over it. The next run removes
temporary files a killed run left (:meth:`RunFolder.clean_leftovers`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ephys_core.files import atomic_write_bytes

__all__ = ["AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO writing each file atomically in its own folder."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())
