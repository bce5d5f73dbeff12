"""Rendering helpers for command modules, including those of plugins.

Use these rather than printing: they send results to stdout and messages to stderr, draw
progress bars only on a terminal, and keep tables readable when output is piped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ephys_core.cli._console import err_console, out_console, print_error, print_json

__all__ = ["message", "print_error", "print_json", "progress", "table"]


def message(text: str, style: str | None = None) -> None:
    """A status line on stderr (``style`` e.g. ``"green"``, ``"yellow"``)."""
    from rich.markup import escape

    err_console().print(f"[{style}]{escape(text)}[/]" if style else escape(text))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table of results on stdout."""
    from rich.markup import escape
    from rich.table import Table

    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*(escape(str(cell)) if cell is not None else "" for cell in row))
    out_console().print(view)


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, steps: float = 1, description: str | None = None) -> None:
        """Advance by ``steps``; optionally change the description."""
        if self._progress is None:
            return
        kwargs = {"description": description} if description else {}
        self._progress.update(self._task, advance=steps, **kwargs)

    def total(self, total: float) -> None:
        """Change the total once it is known."""
        if self._progress is not None:
            self._progress.update(self._task, total=total)


@contextmanager
def progress(description: str, total: float | None) -> Iterator[_Bar]:
    """A progress bar on stderr (silent when stderr is not a terminal)."""
    console = err_console()
    if not console.is_terminal:
        yield _Bar(None, None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        yield _Bar(bar, bar.add_task(description, total=total))
