"""``summary.json`` and ``report.md`` of an evaluation run.

The report knows no evaluator's result layout: each evaluator renders its own section
(:func:`ephys_core.reporting.section_of`), and plugins add theirs through the
``ephys_report_sections`` hook.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ephys_core.files import atomic_write_bytes
from ephys_core.reporting import ReportSection

__all__ = ["write_report"]


def write_report(
    out_dir: Path,
    summary: dict[str, Any],
    evaluator_sections: Sequence[ReportSection],
    plugin_sections: Sequence[ReportSection],
) -> Path:
    """Write ``summary.json`` (plugin sections' data under ``sections``) and ``report.md``.

    Returns
    -------
    Path
        ``report.md``.
    """
    summary["sections"] = {s.title: dict(s.data) for s in plugin_sections}
    text = json.dumps(summary, indent=1, default=str) + "\n"
    atomic_write_bytes(out_dir / "summary.json", text.encode("utf-8"))
    lines = [
        f"# Evaluation of {summary['run']} ({summary['model']})",
        "",
        f"Checkpoint: `{summary['checkpoint']}`",
        "",
    ]
    for section in [*evaluator_sections, *plugin_sections]:
        lines += [*section.to_markdown(), ""]
    report = out_dir / "report.md"
    atomic_write_bytes(report, ("\n".join(lines).rstrip() + "\n").encode("utf-8"))
    return report
