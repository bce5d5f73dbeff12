"""``ephys tokenizer fit|encode|decode``: tokenizers as artifacts, datasets encoded once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Fit tokenizers, encode prepared datasets into codes once, and decode them back.",
    no_args_is_help=True,
    add_completion=False,
)

DataOption = Annotated[
    list[Path],
    typer.Option("--data", "-d", help="Prepared dataset (signals). Repeatable."),
]


def _params(pairs: list[str] | None) -> dict[str, Any]:
    from ephys_core._overrides import parse_override

    params: dict[str, Any] = {}
    for pair in pairs or []:
        path, value = parse_override(pair)
        if len(path) != 1:
            raise typer.BadParameter(f"{pair!r}: give a top-level parameter as KEY=VALUE")
        params[str(path[0])] = value
    return params


def _split_of(config: Path | None) -> tuple[list[Path], dict[str, Any] | None]:
    """Roots and split of a run configuration's dataset (what the tokenizer must not see)."""
    if config is None:
        return [], None
    from ephys_core.config import load_config

    run = load_config(config)
    run.require("data", command="tokenizer fit")
    run.resolve(["data"])
    params = run.params("data.dataset")
    split = getattr(params, "split", None)
    split = split.model_dump(mode="json") if split is not None else None
    return [Path(r) for r in getattr(params, "roots", None) or []], split


@app.command("fit")
def fit_command(
    name: Annotated[str, typer.Argument(help="Registered tokenizer (`ephys plugins`).")],
    out: Annotated[Path, typer.Option("--out", help="Tokenizer folder to write.")],
    data: DataOption = None,  # type: ignore[assignment]
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE parameter. Repeatable.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Run configuration whose data roots and split to use: the tokenizer is "
            "fitted on that run's training split only.",
        ),
    ] = None,
    max_samples: Annotated[
        int, typer.Option("--max-samples", help="Training time points to fit on.", min=2)
    ] = 1_000_000,
) -> None:
    """Fit a fixed tokenizer (quantile bins, ...) on the training split and save it.

    Without --config the split is the datasets' default (by subject, 10 % validation, 10 %
    test, seed 42): the one a run gets when it sets none.
    """
    from ephys_core.cli.render import message
    from ephys_data.encoding import fit_tokenizer

    roots, split = _split_of(config)
    roots = list(data or []) or roots
    if not roots:
        raise typer.BadParameter("give --data or a --config with data roots", param_hint="--data")
    artifact = fit_tokenizer(name, _params(param), roots, out, split=split, max_samples=max_samples)
    facts = artifact.fitted_on
    where = (
        f" on {facts['samples']} samples of {facts['train_sessions']} training session(s)"
        if facts
        else ""
    )
    message(f"{name} {artifact.identity}{where}: {out}", "green")


@app.command("encode")
def encode_command(
    tokenizer: Annotated[Path, typer.Argument(help="Tokenizer folder (`ephys tokenizer fit`).")],
    out: Annotated[Path, typer.Option("--out", help="Code dataset to write (or resume).")],
    data: DataOption = None,  # type: ignore[assignment]
) -> None:
    """Encode prepared datasets into a code dataset, once; resumable.

    Train token models on it with the `tokens_next_step` dataset: they decode through the
    tokenizer it carries and record its identity in their checkpoints.
    """
    from ephys_core.cli.render import message, progress
    from ephys_data.encoding import encode_dataset
    from ephys_tokenizers.artifact import load_tokenizer

    if not data:
        raise typer.BadParameter("give at least one --data", param_hint="--data")
    artifact = load_tokenizer(tokenizer)
    with progress("encoding", None) as bar:

        def on_event(kind: str, payload: Any) -> None:
            if kind == "plan":
                bar.total(payload["total"])
                bar.advance(payload["skipped"])
            else:
                bar.advance(1, f"encoded {payload}")

        summary = encode_dataset(artifact, data, out, on_event=on_event)
    rate = summary.samples / summary.seconds if summary.seconds else float("nan")
    message(
        f"{len(summary.done)} session(s) encoded, {len(summary.skipped)} already done "
        f"({rate:,.0f} samples/s) with {artifact.name} {artifact.identity}: {out}",
        "green",
    )


@app.command("decode")
def decode_command(
    codes: Annotated[Path, typer.Argument(help="Code dataset (`ephys tokenizer encode`).")],
    out: Annotated[Path, typer.Option("--out", help="Prepared dataset of signals to write.")],
) -> None:
    """Decode a code dataset back to signals, in the units the tokenizer was given."""
    from ephys_core.cli.render import message, progress
    from ephys_data.encoding import decode_dataset

    with progress("decoding", None) as bar:

        def on_event(kind: str, payload: Any) -> None:
            if kind == "plan":
                bar.total(payload["total"])
            else:
                bar.advance(1, f"decoded {payload}")

        summary = decode_dataset(codes, out, on_event=on_event)
    message(f"{len(summary.done)} session(s) decoded: {out}", "green")
