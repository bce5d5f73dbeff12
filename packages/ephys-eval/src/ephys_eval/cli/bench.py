"""``ephys bench``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False)


@app.command(name="bench")
def bench_command(
    budget: Annotated[
        str, typer.Option("--budget", help="smoke (a few CPU minutes) or standard.")
    ] = "smoke",
    models: Annotated[
        str | None,
        typer.Option("--models", help="Comma-separated forecasters (default: the budget's)."),
    ] = None,
    tokenizers: Annotated[
        str | None,
        typer.Option(
            "--tokenizers",
            help="Comma-separated tokenizer rows (default: the budget's; 'none' for none).",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="A prepared dataset instead of the simulated default."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for data, runs and leaderboard.")
    ] = Path("ephys-bench"),
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain",
            help="Train every model again (default: reuse runs in --out that finished with "
            "the same configuration, and only evaluate them).",
        ),
    ] = False,
) -> None:
    """Run the forecasting benchmark: every model beside classical baselines, one leaderboard.

    The protocol (ephys-forecast/4) fixes the data, preprocessing, split, windows, metrics,
    baselines and seeds; the budget fixes model sizes and training steps. The leaderboard
    (markdown, JSON, PNG) shows each model's test cross-entropy relative to the best
    classical baseline, its rollouts against real data, its training cost and its generation
    throughput, with the protocol and data hashes.

    Tokenizer rows train one forecaster on each tokenizer's codes (mu-law, quantile, learned
    tokenizers trained on the training split) and score its rollouts decoded to tesla, so that
    tokenizers compete in signal space.

    A model whose run in --out finished with the same configuration is evaluated again without
    training, so an interrupted benchmark resumes where it stopped.
    """
    from ephys_core.cli.render import message
    from ephys_eval.bench.runner import run_benchmark
    from ephys_models.training import quiet_lightning

    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    keys = None
    if tokenizers is not None:
        keys = [] if tokenizers.strip() == "none" else [k.strip() for k in tokenizers.split(",")]
    quiet_lightning()
    result = run_benchmark(
        out,
        budget=budget,
        models=names,
        data=data,
        retrain=retrain,
        progress=lambda line: message(line),
        tokenizers=keys,
    )
    leaderboard = next(p for p in result.files if p.suffix == ".md")
    typer.echo(leaderboard.read_text(encoding="utf-8"))
    message(f"leaderboard: {leaderboard}", "green")
