"""Output for the command line: rich on a terminal, plain text otherwise.

Data (tables, JSON) goes to stdout; messages, warnings and errors go to stderr.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["configure_logging", "err_console", "out_console", "print_error", "print_json"]


@cache
def out_console() -> Console:
    """Console for results (stdout)."""
    from rich.console import Console

    console = Console(soft_wrap=False, highlight=False)
    if not console.is_terminal:  # pipes and files: do not squeeze tables into 80 columns
        console.width = max(console.width, 160)
    return console


@cache
def err_console() -> Console:
    """Console for messages (stderr)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """One clear error line (or a short block for multi-problem errors) on stderr."""
    from rich.markup import escape

    err_console().print(f"[bold red]error:[/] {escape(message)}")


def print_json(data: Any) -> None:
    """Machine-readable JSON on stdout, without any styling."""
    import json
    import sys

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def configure_logging(level: int) -> None:
    """Route the ``ephys`` loggers to stderr through rich, at ``level``."""
    from rich.logging import RichHandler

    from ephys_core.logging import ROOT_LOGGER

    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "_ephys_cli", False):
            logger.removeHandler(handler)
    handler = RichHandler(
        console=err_console(), show_time=level <= logging.DEBUG, show_path=False, markup=False
    )
    handler._ephys_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
