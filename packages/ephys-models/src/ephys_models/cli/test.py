"""``ephys test``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ephys_models.cli import CheckpointOption, Overrides

app = typer.Typer(add_completion=False)


@app.command(name="test")
def test_command(
    config: Annotated[Path | None, typer.Argument(help="Run configuration (YAML).")] = None,
    ckpt: CheckpointOption = None,
    override: Overrides = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for test_metrics.json (default: the run folder)."),
    ] = None,
) -> None:
    """Test a trained checkpoint on the test split: teacher-forced loss and the loss's metrics.

    Without CONFIG, the configuration stored in the checkpoint is used (with any overrides).
    Without --ckpt, the run's best checkpoint by its recorded score (or its last) is used.
    The metrics are printed and written to `test_metrics.json` in the checkpoint's run folder
    (or --out).
    """
    from ephys_core.cli.render import table
    from ephys_models.training import quiet_lightning, run_test, select_checkpoint

    choice = select_checkpoint(config, ckpt, override)
    quiet_lightning()
    metrics = run_test(choice.checkpoint, choice.config if choice.given_config else None, out)
    table(
        f"test metrics ({choice.checkpoint})",
        ["metric", "value"],
        [(k, f"{v:.5g}") for k, v in sorted(metrics.items())],
    )
