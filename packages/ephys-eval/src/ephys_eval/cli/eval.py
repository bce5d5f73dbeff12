"""``ephys eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ephys_eval.cli import show_tables

app = typer.Typer(add_completion=False)


@app.command(name="eval")
def eval_command(
    config: Annotated[Path | None, typer.Argument(help="Run configuration (YAML).")] = None,
    ckpt: Annotated[Path | None, typer.Option("--ckpt", help="Checkpoint to evaluate.")] = None,
    override: Annotated[
        list[str] | None,
        typer.Option("--override", "-o", help="Dotted KEY=VALUE override. Repeatable."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: <run>/eval).")
    ] = None,
) -> None:
    """Evaluate a trained model and write a report: scores, rollouts, plots and summary.json.

    The evaluators come from the configuration's `evaluation` section (`token_forecast` by
    default). Without --ckpt the run's best checkpoint by its recorded score (or its last) is
    used; without CONFIG the configuration stored in the checkpoint (with any overrides).
    """
    from ephys_core.cli.render import message
    from ephys_eval.runner import evaluate, report_folder
    from ephys_models.training import quiet_lightning, select_checkpoint

    choice = select_checkpoint(config, ckpt, override)
    report_folder(choice.checkpoint, choice.config, out)  # fails now if there is nowhere to write
    quiet_lightning()
    evaluation = evaluate(choice.checkpoint, choice.config if choice.given_config else None, out)
    show_tables(evaluation.tables)
    message(f"report: {evaluation.report}", "green")
