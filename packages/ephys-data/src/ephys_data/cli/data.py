"""``ephys data``: inspect, verify and convert prepared datasets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Inspect, verify and convert prepared datasets.",
    no_args_is_help=True,
    add_completion=False,
)


def describe(root: Path) -> dict[str, Any]:
    """What ``ephys data info`` shows, as JSON-ready data."""
    from ephys_data.format import PreparedDataset

    dataset = PreparedDataset(root)
    sessions = dataset.sessions()
    first = sessions[0].meta if sessions else {}
    types: Counter[str] = Counter()  # channel type -> sessions that have it
    for session in sessions:
        types.update(set(session.meta.get("ch_types", [])))
    return {
        "root": str(root),
        "totals": dataset.manifest["totals"],
        "sfreq": sorted({s.sfreq for s in sessions}),
        "n_channels": sorted({int(s.meta["n_channels"]) for s in sessions}),
        "channel_types": dict(types),
        "dtype": sorted({s.meta["dtype"] for s in sessions}),
        "subjects": sorted({s.meta.get("subject") or s.name for s in sessions}),
        "transforms": [t.get("kind") for t in first.get("transforms", [])],
        "has_labels": any(s.meta.get("labels") for s in sessions),
        "pipeline": dataset.manifest.get("pipeline", []),
        "mixed": bool(dataset.manifest.get("mixed", False)),
        "pipelines": [
            {
                "config_hash": p.get("config_hash"),
                "stages": [step.get("name") for step in p.get("pipeline") or []],
                "sessions": list(p.get("sessions", [])),
            }
            for p in dataset.manifest.get("pipelines", [])
        ],
        "non_finite": {
            s.name: s.non_finite for s in sessions if s.non_finite is None or s.non_finite > 0
        },
        "versions": first.get("provenance", {}).get("versions", {}),
        "failures": dataset.manifest.get("failures", []),
        "sessions": [
            {
                "name": s.name,
                "subject": s.meta.get("subject"),
                "task": s.meta.get("task"),
                "seconds": s.n_times / s.sfreq,
                "n_channels": s.meta["n_channels"],
                "source": s.meta.get("provenance", {}).get("source"),
            }
            for s in sessions
        ],
    }


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="Prepared dataset folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a prepared dataset: sessions, hours, channels, sfreq, provenance."""
    from ephys_core.cli.render import message, print_json, table

    data = describe(path)
    if as_json:
        print_json(data)
        return
    totals = data["totals"]
    message(
        f"{path}: {totals['sessions']} sessions, {totals['hours']:.3f} h "
        f"({totals['samples']} samples); sfreq {data['sfreq']} Hz; channels per session "
        f"{data['n_channels']}; sessions per channel type {data['channel_types']}; "
        f"dtype {data['dtype']}; "
        f"{len(data['subjects'])} subjects; transforms {data['transforms'] or 'none'}; "
        f"condition labels: {'yes' if data['has_labels'] else 'no'}"
    )
    if data["mixed"]:
        message(
            f"MIXED: the sessions were prepared by {len(data['pipelines'])} different pipelines",
            "yellow",
        )
        table(
            "pipelines",
            ["config_hash", "stages", "sessions"],
            [
                (p["config_hash"], " -> ".join(p["stages"]), len(p["sessions"]))
                for p in data["pipelines"]
            ],
        )
    elif data["pipeline"]:
        message("pipeline: " + " -> ".join(step["name"] for step in data["pipeline"]))
    bad = {k: v for k, v in data["non_finite"].items() if v}
    if bad:
        message(
            f"{len(bad)} session(s) hold NaN or infinite samples: "
            + ", ".join(f"{k} ({v})" for k, v in list(bad.items())[:10]),
            "yellow",
        )
    table(
        "sessions",
        ["name", "subject", "task", "seconds", "channels", "source"],
        [
            (
                s["name"],
                s["subject"],
                s["task"],
                f"{s['seconds']:.1f}",
                s["n_channels"],
                s["source"],
            )
            for s in data["sessions"]
        ],
    )
    if data["failures"]:
        table(
            "failed in the last run",
            ["name", "source", "error"],
            [(f["name"], f["source"], f["error"]) for f in data["failures"]],
        )


@app.command()
def verify(path: Annotated[Path, typer.Argument(help="Prepared dataset folder.")]) -> None:
    """Check every session: its sidecar against its digest and the manifest, and its data and
    labels against the hashes in the sidecar (reads every byte)."""
    from ephys_core.cli.render import message
    from ephys_data.format import DatasetFormatError, PreparedDataset

    dataset = PreparedDataset(path)
    bad = 0
    for name in dataset.names:
        try:
            dataset.session(name).verify()
        except DatasetFormatError as err:
            bad += 1
            message(str(err), "red")
    if bad:
        message(f"{path}: {bad} of {len(dataset.names)} sessions failed verification", "red")
        raise typer.Exit(1)
    message(
        f"{path}: every session matches its hashes (data, labels and sidecar) and the manifest",
        "green",
    )


@app.command(name="import-legacy")
def import_legacy_command(
    src: Annotated[Path, typer.Argument(help="Folder of legacy session folders.")],
    dst: Annotated[Path, typer.Argument(help="Prepared dataset folder to write.")],
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Required: legacy chunks are pickled, and "
            "unpickling can run code. Use only on data you trust.",
        ),
    ] = False,
) -> None:
    """Convert a dataset of the previous generation (pickled .npy chunks) to this format."""
    from ephys_core.cli.render import message
    from ephys_data.legacy import import_legacy

    manifest = import_legacy(src, dst, allow_pickle=allow_pickle)
    failed = len(manifest["failures"])
    message(
        f"imported {manifest['totals']['sessions']} sessions into {dst}; {failed} failed",
        "yellow" if failed else "green",
    )
    if failed:
        raise typer.Exit(3)
