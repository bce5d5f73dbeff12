"""``ephys train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ephys_models.cli import Overrides

app = typer.Typer(add_completion=False)


@app.command(name="train")
def train_command(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML).")],
    override: Overrides = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's last checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an existing run of the same name."),
    ] = False,
) -> None:
    """Train a model from a run configuration: data, model, loss and trainer come from CONFIG.

    Everything is checked before any work. Checkpoints, logs (CSV by default), the resolved
    configuration and a summary go to `<out_dir>/<name>/`. `--resume` continues an interrupted
    run exactly where it stopped; `--overwrite` replaces an earlier run of the same name.

    With `data.tokenizer` (a tokenizer folder, or a tokenizer training run's checkpoint), the
    dataset's signals are encoded once into `data.codes_dir` (default
    `<out_dir>/codes/<tokenizer>-<identity>`) and the model trains on the codes; later runs
    reuse them.
    """
    from ephys_core.cli.render import message
    from ephys_core.config import load_config
    from ephys_models.training import plan_training

    run = load_config(config, override or ())
    if run.data is not None and run.data.tokenizer is not None:
        plan = _plan_on_codes(run, resume=resume, overwrite=overwrite)
    else:
        plan = plan_training(run, resume=resume, overwrite=overwrite)
    from ephys_models.training import execute, quiet_lightning

    quiet_lightning()
    result = execute(plan)
    shown = ", ".join(
        f"{k} {v:.4f}"
        for k, v in sorted(result.metrics.items())
        if k.startswith(("val/", "train/loss_epoch"))
    )
    message(f"trained {result.global_step} steps; {shown}", "green")
    message(f"run folder: {result.run_dir}")
    if result.best_checkpoint:
        message(f"best checkpoint: {result.best_checkpoint}")


def _plan_on_codes(run: Any, **options: bool) -> Any:
    """The plan of a run on ``data.tokenizer``'s codes, with a bar while it encodes (the
    export and the encoding log what they did)."""
    from ephys_core.cli.render import progress
    from ephys_models.training import plan_training

    with progress("encoding", None) as bar:

        def on_event(kind: str, payload: Any) -> None:
            if kind == "export":
                bar.advance(0, f"exporting {payload}")
            elif kind == "plan":
                bar.total(payload["total"])
                bar.advance(payload["skipped"], "encoding")
            else:
                bar.advance(1, f"encoded {payload}")

        return plan_training(run, on_encode=on_event, **options)
