"""``ephys eval`` and ``ephys quickstart``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

eval_app = typer.Typer(add_completion=False)
quickstart_app = typer.Typer(add_completion=False)


@eval_app.command(name="eval")
def eval_command(
    config: Annotated[Path | None, typer.Argument(help="Run configuration (YAML).")] = None,
    ckpt: Annotated[Path | None, typer.Option("--ckpt", help="Checkpoint to evaluate.")] = None,
    override: Annotated[
        list[str] | None,
        typer.Option("--override", "-o", help="Dotted KEY=VALUE override. Repeatable."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Report folder.")] = None,
) -> None:
    """Evaluate a trained model: teacher-forced scores, rollouts, plots and summary.json.

    The evaluators come from the configuration's `evaluation` section (`token_forecast` by
    default). Without --ckpt the run's best (or last) checkpoint is used; without CONFIG the
    configuration stored in the checkpoint (with any overrides).
    """
    from ephys_core.cli.render import message
    from ephys_eval.runner import evaluate
    from ephys_models.cli import quiet_lightning, run_and_checkpoint

    quiet_lightning()
    run, ckpt = run_and_checkpoint(config, ckpt, override)
    summary = evaluate(ckpt, run, out)
    show_summary(summary)
    folder = out or (run.evaluation.out_dir if run and run.evaluation.out_dir else None)
    message(f"report: {folder or Path(ckpt).resolve().parent.parent / 'eval'}/report.md", "green")


def show_summary(summary: dict) -> None:
    """Tables of the token-forecast results, model beside baselines."""
    from ephys_core.cli.render import table

    for name, result in summary["evaluators"].items():
        if "teacher_forced" not in result:
            continue
        tf, ro = result["teacher_forced"], result["rollout"]
        rows = [
            (
                f,
                f"{tf[f]['cross_entropy']:.4f}",
                f"{tf[f]['accuracy']:.3f}",
                f"{ro['psd_log_distance'][f]:.3f}",
                f"{ro['divergence_seconds'][f]:.2f}",
            )
            for f in ("model", "repeat_last", "token_frequency")
        ]
        table(
            f"{name} on the {tf['split']} split",
            ["forecaster", "cross-entropy", "accuracy", "PSD log-distance", "diverges after (s)"],
            rows,
        )


@quickstart_app.command(name="quickstart")
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
    ] = 6.0,
    steps: Annotated[int, typer.Option("--steps", help="Training steps.", min=1)] = 200,
) -> None:
    """Simulate (or read) MEG, preprocess it, train a small gpt2meg, evaluate it: one command.

    Runs on a laptop CPU in a few minutes with no network. The summary shows the model's
    validation cross-entropy beside the naive baselines' on the same windows; the report, plots
    and the trained model are written to --out.
    """
    from ephys_core.cli.render import message
    from ephys_eval.quickstart import quickstart
    from ephys_models.cli import quiet_lightning

    quiet_lightning()
    result = quickstart(out, input_path=input_path, minutes=minutes, steps=steps)
    show_summary(result.summary)
    message(result.verdict, "green" if result.beats_baselines else "yellow")
    message(f"report: {result.report}")
