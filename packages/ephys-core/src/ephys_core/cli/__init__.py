"""The ``ephys`` command line.

Each command lives in its own module and imports its heavy dependencies inside its body, so
``ephys --help`` and ``ephys plugins`` stay fast and import neither torch nor MNE. Commands from
other packages arrive through ``ephys.cli`` entry points (see :mod:`ephys_core.cli._group`).
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ephys_core.cli._group import LazyGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="ephys",
    cls=LazyGroup,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Deep learning on MEG and EEG: preprocess recordings, train models, evaluate them.",
)


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in ("ephys-core", "ephys-data", "ephys-tokenizers", "ephys-models", "ephys-eval"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            continue
    typer.echo("\n".join(parts))
    raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Show versions and exit."
        ),
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
    ] = 0,
    quiet: Annotated[
        int, typer.Option("--quiet", "-q", count=True, help="Less log output (-qq: errors only).")
    ] = 0,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="EPHYS_DEBUG",
            help="Show tracebacks of errors. [env var: EPHYS_DEBUG]",
        ),
    ] = False,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            "-p",
            help="Load a local plugin file (path.py) or module, or disable a distribution "
            "(no:NAME). Repeatable.",
        ),
    ] = None,
) -> None:
    """Deep learning on MEG and EEG: preprocess recordings, train models, evaluate them."""
    from ephys_core.cli._console import configure_logging

    level = logging.INFO + 10 * (quiet - min(verbose, 1)) if verbose < 2 else logging.DEBUG
    configure_logging(max(logging.DEBUG, min(level, logging.CRITICAL)))
    if plugin:
        from ephys_core.plugins import apply_plugin_options

        ctx.call_on_close(apply_plugin_options(plugin))


def main() -> None:
    """Console-script entry point of ``ephys``."""
    app(prog_name="ephys")
