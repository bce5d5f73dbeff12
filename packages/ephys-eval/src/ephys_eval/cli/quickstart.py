"""``ephys quickstart``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ephys_eval.cli import show_tables

app = typer.Typer(add_completion=False)


@app.command(name="quickstart")
def quickstart_command(
    input_path: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="Your recording (or folder); simulated MEG if unset."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for data, model and report.")] = Path(
        "ephys-quickstart"
    ),
    minutes: Annotated[
        float, typer.Option("--minutes", help="Minutes of MEG to simulate.", min=0.5)
    ] = 60.0,
    steps: Annotated[int, typer.Option("--steps", help="Training steps.", min=1)] = 1000,
) -> None:
    """Simulate or read data, train a small model, evaluate it: all in one.

    Simulates (or reads) MEG, preprocesses it, trains a small WaveNet and evaluates it beside
    classical baselines (AR, VAR, persistence, token frequency) on the same windows. Runs on a
    laptop CPU in under ten minutes with no network; the verdict says plainly whether the model
    beats the best baseline. The report, plots and the trained model go to --out.
    """
    from ephys_core.cli.render import message
    from ephys_eval.quickstart import quickstart
    from ephys_models.training import quiet_lightning

    quiet_lightning()
    result = quickstart(out, input_path=input_path, minutes=minutes, steps=steps)
    show_tables(result.tables)
    message(result.verdict, "green" if result.beats_baselines else "yellow")
    message(f"report: {result.report}")
