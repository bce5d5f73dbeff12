"""Hook implementations. Kept import-light: ephys imports this module at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ephys_core.hookspecs import ReportSection, hookimpl


@hookimpl
def ephys_report_sections(summary: Mapping[str, Any], run_dir: Path) -> ReportSection:
    """Add a short section saying which plugin took part in the report."""
    return ReportSection(
        title="ephys-plugin-example",
        body=f"The example plugin saw {len(summary)} summary entries.",
        data={"summary_keys": len(summary)},
    )
