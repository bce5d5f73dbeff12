"""``ephys preprocess``: raw recordings in, a prepared dataset out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False)


@app.command(name="preprocess")
def preprocess_command(
    config: Annotated[
        Path | None, typer.Argument(help="Run configuration with a `preprocessing` section.")
    ] = None,
    override: Annotated[
        list[str] | None,
        typer.Option("--override", "-o", help="Dotted KEY=VALUE override. Repeatable."),
    ] = None,
    input_path: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="A recording or folder of recordings (no config)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Dataset folder to write.")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-j", min=1, help="Parallel local processes.")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask distributed scheduler address (cluster runs)."),
    ] = None,
    mix_pipelines: Annotated[
        bool,
        typer.Option(
            "--mix-pipelines",
            help="Allow writing into a folder holding sessions of another pipeline (the "
            "manifest then lists every pipeline).",
        ),
    ] = False,
) -> None:
    """Preprocess every recording of a data set into a prepared dataset.

    With CONFIG, the `preprocessing` section says where recordings come from and which stages
    run. Without it, `--input PATH --out DIR` runs the default pipeline (read, band-pass
    0.5-40 Hz, resample to 100 Hz, zero bad channels, robust normalisation, clip at 5 SD) on one
    recording or a folder of them. Sessions already prepared with the same pipeline are
    skipped, so an interrupted run resumes. A folder holding sessions of another pipeline is
    refused unless `--mix-pipelines` is given; a folder another run is writing into (it holds
    DIR/.lock) is refused too. Exit status 3 means some recordings failed (see the summary);
    the others were written.
    """
    from ephys_core.errors import ConfigError

    if config is not None:
        if input_path is not None:
            raise ConfigError("give either a configuration file or --input, not both")
        from ephys_core.config import load_config

        run = load_config(config, override or ())
        run.require("preprocessing", command="preprocess")
        run.resolve(["preprocessing"])
        section = run.preprocessing
        assert section is not None
        # the parameters resolve() validated, used as they are
        source: dict = {"name": section.source.name, "params": run.params("preprocessing.source")}
        stages: list = [
            {"name": s.name, "params": run.params(f"preprocessing.stages[{i}]")}
            for i, s in enumerate(section.stages)
        ]
        out_dir = out or section.out_dir
        workers = workers or section.workers
        scheduler = scheduler or section.scheduler
        mix_pipelines = mix_pipelines or section.mix_pipelines
    else:
        if input_path is None or out is None:
            raise ConfigError(
                "give a configuration file, or --input PATH and --out DIR for the default pipeline"
            )
        from ephys_data.pipeline import DEFAULT_STAGES

        source = {"name": "folder", "params": {"root": str(input_path)}}
        stages, out_dir = DEFAULT_STAGES, out
    code = run_and_report(source, stages, out_dir, workers or 1, scheduler, mix_pipelines)
    raise typer.Exit(code)


def run_and_report(
    source: dict,
    stages: list,
    out_dir: Path,
    workers: int,
    scheduler: str | None,
    mix_pipelines: bool = False,
) -> int:
    """Run preprocessing with a progress bar and a summary table; returns the exit status."""
    from ephys_core.cli.render import message, progress, table
    from ephys_data.pipeline import preprocess

    with progress("preprocessing", None) as bar:

        def on_event(kind: str, payload: object) -> None:
            if kind == "plan":
                bar.total(payload["total"] - payload["skipped"])  # type: ignore[index]
            elif kind == "result":
                bar.advance(description=payload.name)  # type: ignore[attr-defined]

        summary = preprocess(
            source,
            stages,
            out_dir,
            workers=workers,
            scheduler=scheduler,
            on_event=on_event,
            mix_pipelines=mix_pipelines,
        )
    rows = [
        (
            r.name,
            r.status,
            f"{r.recording_seconds:.1f}" if r.status == "done" else "",
            f"{r.seconds:.1f}" if r.status != "skipped" else "",
            r.error or "",
        )
        for r in summary.results
    ]
    table(
        f"prepared dataset {out_dir}", ["session", "status", "recording s", "wall s", "error"], rows
    )
    done, skipped, failed = (summary.count(s) for s in ("done", "skipped", "failed"))
    totals = summary.manifest["totals"]
    message(
        f"{done} processed, {skipped} already done, {failed} failed; dataset holds "
        f"{totals['sessions']} sessions, {totals['hours']:.3f} h",
        "yellow" if failed else "green",
    )
    if summary.manifest.get("mixed"):
        message(
            f"{out_dir} holds sessions of {len(summary.manifest['pipelines'])} different "
            "pipelines (`ephys data info` lists them)",
            "yellow",
        )
    if failed and failed == len(summary.results):
        return 1
    return 3 if failed else 0
