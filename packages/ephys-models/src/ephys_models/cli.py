"""``ephys train``, ``ephys test`` and ``ephys export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

train_app = typer.Typer(add_completion=False)
test_app = typer.Typer(add_completion=False)
export_app = typer.Typer(add_completion=False)


def quiet_lightning() -> None:
    """Keep Lightning's banners and tips off the terminal unless ``-vv`` asks for debug output.

    ephys reports progress and results itself; Lightning's start-up lines ("GPU available",
    product tips) and a known deprecation warning of its pytree helper only add noise.
    """
    import logging
    import warnings

    import lightning.pytorch  # noqa: F401 - it sets its loggers' levels when imported

    if logging.getLogger("ephys").getEffectiveLevel() > logging.DEBUG:
        for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


Overrides = Annotated[
    list[str] | None,
    typer.Option("--override", "-o", help="Dotted KEY=VALUE override. Repeatable."),
]


@train_app.command(name="train")
def train_command(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML).")],
    override: Overrides = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's last checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing run of the same name.")
    ] = False,
) -> None:
    """Train a model: data, model, loss and trainer come from CONFIG.

    Checkpoints, logs (CSV by default), the resolved configuration and a summary go to
    `<out_dir>/<name>/`. `--resume` continues an interrupted run exactly where it stopped.
    """
    from ephys_core.cli.render import message
    from ephys_core.config import load_config
    from ephys_models.training import train

    quiet_lightning()
    result = train(load_config(config, override or ()), resume=resume, overwrite=overwrite)
    shown = ", ".join(
        f"{k} {v:.4f}"
        for k, v in sorted(result.metrics.items())
        if k.startswith(("val/", "train/loss_epoch"))
    )
    message(f"trained {result.global_step} steps; {shown}", "green")
    message(f"run folder: {result.run_dir}")
    if result.best_checkpoint:
        message(f"best checkpoint: {result.best_checkpoint}")


@test_app.command(name="test")
def test_command(
    config: Annotated[Path | None, typer.Argument(help="Run configuration (YAML).")] = None,
    ckpt: Annotated[Path | None, typer.Option("--ckpt", help="Checkpoint to test.")] = None,
    override: Overrides = None,
) -> None:
    """Test a checkpoint on the test split: teacher-forced loss and the loss's metrics.

    Without CONFIG, the configuration stored in the checkpoint is used (with any overrides).
    Without --ckpt, the run's best checkpoint (or last) is used.
    """
    from ephys_core.cli.render import table
    from ephys_models.training import run_test

    quiet_lightning()
    run, ckpt = run_and_checkpoint(config, ckpt, override)
    metrics = run_test(ckpt, run)
    table(
        f"test metrics ({ckpt})",
        ["metric", "value"],
        [(k, f"{v:.5g}") for k, v in sorted(metrics.items())],
    )


def run_and_checkpoint(
    config: Path | None, ckpt: Path | None, override: list[str] | None
) -> tuple[Any, Path]:
    """The run configuration and checkpoint a command works on.

    The configuration is CONFIG with overrides, or else the one stored in the checkpoint
    (overrides then apply to it); the checkpoint is --ckpt, or else the run's best (or last).
    """
    from ephys_core.config import load_config
    from ephys_core.errors import ConfigError
    from ephys_models.training import load_checkpoint

    if config is not None:
        run = load_config(config, override or ())
    elif ckpt is not None and override:
        run = load_config(load_checkpoint(ckpt)["ephys"]["config"], override)
    else:
        run = None
    if ckpt is None:
        if run is None:
            raise ConfigError("give a run configuration or --ckpt")
        ckpt = find_checkpoint(run.run_dir)
    return run, ckpt


def find_checkpoint(run_dir: Path) -> Path:
    """The best checkpoint of a run, or its last one."""
    from ephys_core.errors import ConfigError

    folder = run_dir / "checkpoints"
    best = sorted(folder.glob("best-*.ckpt"))
    if best:
        return best[-1]
    if (folder / "last.ckpt").is_file():
        return folder / "last.ckpt"
    raise ConfigError(f"no checkpoint in {folder}; train first or pass --ckpt")


@export_app.command(name="export")
def export_command(
    ckpt: Annotated[Path, typer.Argument(help="Checkpoint written by `ephys train`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write.")] = Path("export"),
) -> None:
    """Export a checkpoint's model as `model.safetensors` plus `config.json`."""
    from ephys_core.cli.render import message
    from ephys_models.training import export

    folder = export(ckpt, out)
    message(f"exported to {folder}", "green")
