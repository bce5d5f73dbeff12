"""``ephys export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False)


@app.command(name="export")
def export_command(
    ckpt: Annotated[Path, typer.Argument(help="Checkpoint written by `ephys train`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write.")] = Path("export"),
) -> None:
    """Export a checkpoint's model as `model.safetensors` plus `config.json`."""
    from ephys_core.cli.render import message
    from ephys_models.training import export

    folder = export(ckpt, out)
    message(f"exported to {folder}", "green")
