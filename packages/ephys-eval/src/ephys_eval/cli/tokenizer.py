"""``ephys tokenizer fit|export|encode|decode|card``: tokenizers as artifacts, datasets
encoded once, cards of what they keep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Fit, export, encode with and decode tokenizers; write tokenizer cards.",
    no_args_is_help=True,
    add_completion=False,
)

DataOption = Annotated[
    list[Path],
    typer.Option("--data", "-d", help="Prepared dataset (signals). Repeatable."),
]


def _params(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (values parsed as YAML) as a parameter dict."""
    import yaml

    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or "." in key:
            raise typer.BadParameter(f"{pair!r}: give a top-level parameter as KEY=VALUE")
        params[key.strip()] = yaml.safe_load(value)
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


def _session_events(bar: Any, verb: str) -> Any:
    """A progress callback of encode_dataset/decode_dataset: the plan sets the total (and
    counts what was done before), then each session advances the bar."""

    def on_event(kind: str, payload: Any) -> None:
        if kind == "plan":
            bar.total(payload["total"])
            bar.advance(payload["skipped"])
        else:
            bar.advance(1, f"{verb} {payload}")

    return on_event


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


@app.command("export")
def export_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="Checkpoint of a tokenizer model (brainomni).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Tokenizer folder to write.")],
) -> None:
    """Export a trained tokenizer model (`ephys train` on brainomni) as a tokenizer folder:
    its parameters, the montage it was trained on, its weights and what it was trained on."""
    from ephys_core.cli.render import message
    from ephys_models.tokenizer_export import export_tokenizer
    from ephys_models.training import quiet_lightning

    if not checkpoint.is_file():
        raise typer.BadParameter(f"{checkpoint} is not a file", param_hint="CHECKPOINT")
    quiet_lightning()
    artifact = export_tokenizer(checkpoint, out)
    facts = artifact.fitted_on
    message(
        f"{artifact.name} {artifact.identity}, trained on {facts['train_sessions']} session(s) "
        f"({facts['train_seconds']:.0f} s): {out}",
        "green",
    )


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
        summary = encode_dataset(artifact, data, out, on_event=_session_events(bar, "encoded"))
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
        summary = decode_dataset(codes, out, on_event=_session_events(bar, "decoded"))
    message(f"{len(summary.done)} session(s) decoded: {out}", "green")


def _artifact(tokenizer: str, params: dict[str, Any]) -> Any:
    """A tokenizer folder, or a registered tokenizer that needs no fitting (by name)."""
    from ephys_tokenizers.artifact import TokenizerArtifact, describe_tokenizer, load_tokenizer

    if Path(tokenizer).is_dir():
        if params:
            raise typer.BadParameter("a tokenizer folder takes no --param", param_hint="--param")
        return load_tokenizer(tokenizer)
    from ephys_core.plugins import get_registry

    built = get_registry("tokenizers").create(tokenizer, params)
    if getattr(built, "requires_fit", False):
        raise typer.BadParameter(
            f"{tokenizer} must be fitted first: `ephys tokenizer fit {tokenizer} ...`, then "
            "give its folder"
        )
    return TokenizerArtifact(tokenizer, built, describe_tokenizer(tokenizer, built)["identity"])


@app.command("card")
def card_command(
    tokenizer: Annotated[
        str, typer.Argument(help="Tokenizer folder, or the name of one that needs no fitting.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder of the card.")],
    data: DataOption = None,  # type: ignore[assignment]
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE (a tokenizer given by name). Repeatable."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split to score on.")] = "test",
    segments: Annotated[int, typer.Option("--segments", min=1)] = 16,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1)] = 10.0,
    channels: Annotated[
        str | None,
        typer.Option("--channels", help="Comma-separated channels to score (per-channel codes)."),
    ] = None,
) -> None:
    """Write a tokenizer card: reconstruction (PCC, variance explained), PSD error per band,
    bits and codes per second, codebook usage and perplexity, throughput, and plots.

    The split is the one the tokenizer was fitted with (the test split by default), so the
    card scores data the tokenizer never saw.
    """
    from ephys_core.cli.render import message, table
    from ephys_eval.tokenizer_card import tokenizer_card

    if not data:
        raise typer.BadParameter("give at least one --data", param_hint="--data")
    if split not in ("train", "val", "test"):
        raise typer.BadParameter("use train, val or test", param_hint="--split")
    artifact = _artifact(tokenizer, _params(param))
    picked = [c.strip() for c in channels.split(",") if c.strip()] if channels else None
    card = tokenizer_card(
        artifact, data, out, split=split, segments=segments, seconds=seconds, channels=picked
    )
    s = card.summary
    rec, codes = s["reconstruction"], s["codes"]
    table(
        f"{artifact.name} {artifact.identity} on the {s['data']['split']} split",
        ["metric", "value"],
        [
            ["PCC", f"{rec['pcc']:.4f}"],
            ["variance explained", f"{rec['variance_explained_percent']:.2f} %"],
            [
                "worst band PSD error",
                max(
                    (f"{v['mean_abs']:.3f} dB ({b})" for b, v in s["psd_error_db"].items()),
                    key=lambda t: float(t.split()[0]),
                ),
            ],
            ["bits per second", f"{codes['bits_per_second']:,.0f}"],
            ["codebook usage", f"{100 * codes['usage']:.1f} %"],
            ["perplexity", f"{codes['perplexity']:.1f}"],
            ["encode", f"{s['throughput']['encode_samples_per_s']:,.0f} samples/s"],
        ],
    )
    message(f"card: {card.markdown}", "green")
