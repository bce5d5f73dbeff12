"""The commands ephys-models adds to ``ephys``: ``train``, ``test`` and ``export``, one per
module, each registered as an ``ephys.cli`` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["Overrides"]

Overrides = Annotated[
    list[str] | None,
    typer.Option("--override", "-o", help="Dotted KEY=VALUE override. Repeatable."),
]

CheckpointOption = Annotated[Path | None, typer.Option("--ckpt", help="Checkpoint to use.")]
