"""What evaluators and plugins put in reports and on the terminal, and the defaults.

An evaluation writes ``summary.json`` (every evaluator's JSON-ready result), ``report.md``
and plots, and the command line prints summary tables. Neither the report writer nor the
command line knows any evaluator's result layout: each evaluator renders its own result
through two optional methods,

``report_section(result) -> ReportSection``
    its part of ``report.md`` (markdown, figures);
``summary_tables(result) -> Sequence[SummaryTable]``
    the tables ``ephys eval`` prints,

and :func:`section_of` / :func:`tables_of` supply defaults for evaluators that do not define
them (the result as JSON; a table of its numbers). Plugins add sections through the
``ephys_report_sections`` hook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ReportSection", "SummaryTable", "section_of", "tables_of"]


@dataclass(frozen=True)
class SummaryTable:
    """A table of results for the terminal (and for readers who want rows, not prose).

    Attributes
    ----------
    title
        Shown above the table.
    columns
        Column headings.
    rows
        Cells, already formatted as text (or numbers).
    """

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]

    def to_markdown(self) -> list[str]:
        """The table as markdown lines."""
        lines = [
            "| " + " | ".join(str(c) for c in self.columns) + " |",
            "|" + "---|" * len(self.columns),
        ]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        return lines


@dataclass(frozen=True)
class ReportSection:
    """A section of an evaluation report (from an evaluator or a plugin's hook).

    Attributes
    ----------
    title
        Heading of the section.
    body
        Markdown text.
    figures
        Image files (PNG) shown under the text, relative to the report folder or absolute.
    data
        JSON-ready values stored under ``sections.<title>`` in ``summary.json`` (plugin
        sections; an evaluator's own result is stored under ``evaluators.<name>``).
    """

    title: str
    body: str = ""
    figures: Sequence[Path | str] = field(default_factory=tuple)
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_markdown(self, level: int = 2) -> list[str]:
        """The section as markdown lines, figures after the text."""
        lines = [f"{'#' * level} {self.title}", ""]
        if self.body:
            lines += [self.body.rstrip(), ""]
        lines += [f"![{Path(f).stem}]({f})" for f in self.figures]
        return lines


def _numbers(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, bool | int | float) and not isinstance(value, bool):
        yield prefix, value


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def section_of(evaluator: Any, name: str, result: Mapping[str, Any]) -> ReportSection:
    """The evaluator's report section: its own ``report_section``, else the result as JSON."""
    method = getattr(evaluator, "report_section", None)
    if callable(method):
        section = method(result)
        if not isinstance(section, ReportSection):
            raise TypeError(f"{name}.report_section must return a ReportSection, got {section!r}")
        return section
    body = "```json\n" + json.dumps(result, indent=1, default=str) + "\n```"
    return ReportSection(name, body=body)


def tables_of(
    evaluator: Any, name: str, result: Mapping[str, Any], max_rows: int = 30
) -> list[SummaryTable]:
    """The evaluator's summary tables: its own ``summary_tables``, else its numbers."""
    method = getattr(evaluator, "summary_tables", None)
    if callable(method):
        tables = list(method(result))
        for table in tables:
            if not isinstance(table, SummaryTable):
                raise TypeError(f"{name}.summary_tables must return SummaryTables, got {table!r}")
        return tables
    rows = [(key, _shown(value)) for key, value in _numbers(result)][:max_rows]
    return [SummaryTable(name, ["result", "value"], rows)] if rows else []
