"""The commands ephys-eval adds to ``ephys``: ``eval`` and ``quickstart``, one per module."""

from __future__ import annotations

from collections.abc import Iterable

from ephys_core.reporting import SummaryTable

__all__ = ["show_tables"]


def show_tables(tables: Iterable[SummaryTable]) -> None:
    """Print the evaluators' summary tables (each evaluator renders its own)."""
    from ephys_core.cli.render import table

    for summary in tables:
        table(summary.title, list(summary.columns), [list(row) for row in summary.rows])
