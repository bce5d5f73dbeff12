"""Hook specifications: where every installed plugin may take part.

Component lookup (which model, which loss) goes through registries; hooks are for cross-cutting
participation, where *every* plugin that implements a hook contributes. A plugin provides hook
implementations in an import-light module named by an ``ephys.hooks`` entry point::

    [project.entry-points."ephys.hooks"]
    my_plugin = "my_plugin.hooks"

and decorates its functions with :data:`hookimpl`::

    from ephys_core.hookspecs import hookimpl

    @hookimpl
    def ephys_training_callbacks(config):
        return [MyCallback()]

Code inside ephys never calls these hooks through pluggy directly; it uses the typed facade
:class:`ephys_core.hooks.Hooks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from ephys_core.reporting import ReportSection

if TYPE_CHECKING:
    from ephys_core.config import RunConfig

__all__ = ["PROJECT", "ReportSection", "hookimpl", "hookspec"]

PROJECT = "ephys"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ephys_configure_run(config: dict[str, Any]) -> None:
    """Adjust a run configuration after it is read and before it is validated.

    Called once per loaded configuration, after the YAML file is parsed and the command line's
    ``-o key=value`` overrides are applied. Implementations change ``config`` in place (for
    example to fill in a site-specific data root); everything they do is then validated like
    the user's own settings. Every implementation is called, most recently registered first.

    Parameters
    ----------
    config
        The raw configuration mapping (sections ``data``, ``model``, ``loss``, ``trainer``, ...).

    Returns
    -------
    None
        Return values are ignored.

    .. versionadded:: 0.1
    """


@hookspec
def ephys_training_callbacks(config: RunConfig) -> Sequence[Any] | None:
    """Contribute PyTorch Lightning callbacks to a training run.

    Parameters
    ----------
    config
        The validated run configuration being trained.

    Returns
    -------
    sequence of lightning.pytorch.Callback or None
        Callbacks appended after ephys's own (checkpointing, progress, performance monitor).
        Every implementation's callbacks are used.

    .. versionadded:: 0.1
    """


@hookspec
def ephys_report_sections(
    summary: Mapping[str, Any], run_dir: Path
) -> ReportSection | Sequence[ReportSection] | None:
    """Contribute sections to an evaluation report.

    Parameters
    ----------
    summary
        The evaluation summary as written to ``summary.json`` (read-only).
    run_dir
        The directory the report is written to; figures may be saved here.

    Returns
    -------
    ReportSection, sequence of ReportSection, or None
        Sections appended to the report, in plugin order.

    .. versionadded:: 0.1
    """
