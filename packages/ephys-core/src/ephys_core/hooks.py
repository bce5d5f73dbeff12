"""The typed facade over pluggy hooks: the only way ephys code calls a hook.

Hook modules come from ``ephys.hooks`` entry points (and ``-p`` local plugin files). A module
that fails to import, or that implements an ``ephys_`` hook that does not exist, is recorded and
warned about once, like a broken component; it never stops the tool. A hook implementation that
raises while it runs stops the command with a :class:`~ephys_core.errors.HookError` naming the
plugin, its distribution and the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pluggy

from ephys_core import hookspecs
from ephys_core._discovery import resolve_target
from ephys_core.errors import HookError, PluginLoadError
from ephys_core.hookspecs import ReportSection
from ephys_core.kinds import HOOKS_GROUP
from ephys_core.logging import get_logger
from ephys_core.registry import plugin_row

if TYPE_CHECKING:
    from types import ModuleType

    from ephys_core.config import RunConfig
    from ephys_core.plugins import PluginHost

__all__ = ["HookModule", "Hooks"]

logger = get_logger(__name__)


@dataclass
class HookModule:
    """One hook module and whether it is in use (a row of ``ephys plugins``)."""

    name: str
    target: str
    distribution: str | None
    version: str | None
    status: str
    error: str | None = None

    kind: ClassVar[str] = "hooks"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, with the same keys as a component entry."""
        origin = "entry point" if self.distribution else "registered"
        return plugin_row(self, origin, self.status, self.error)


class Hooks:
    """Calls the ``ephys_*`` hooks of every registered plugin, with typed results.

    Parameters
    ----------
    host
        The plugin host whose ``ephys.hooks`` entry points are loaded.
    """

    def __init__(self, host: PluginHost) -> None:
        self._host = host
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.modules: list[HookModule] = []
        if host.policy.trace:
            self._pm.trace.root.setwriter(lambda message: logger.debug("%s", message.rstrip()))
            self._pm.enable_tracing()
        for record in host.records(HOOKS_GROUP):
            row = HookModule(record.name, record.value, record.distribution, record.version, "ok")
            self.modules.append(row)
            try:
                self._register(resolve_target(record.value), record.name)
            except Exception as exc:
                row.status, row.error = "error", f"{type(exc).__name__}: {exc}"
                err = PluginLoadError(
                    kind="hooks",
                    name=record.name,
                    target=record.value,
                    distribution=record.distribution,
                    version=record.version,
                    reason=row.error,
                )
                if host.policy.strict:
                    raise err from exc
                host.report_broken(err)

    def _register(self, module: object, name: str) -> None:
        self._pm.register(module, name=name)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError:
            self._pm.unregister(module)
            raise

    def register_module(self, module: ModuleType, *, name: str) -> None:
        """Register a module's hook implementations (used for ``-p`` local plugins)."""
        self._register(module, name)
        self.modules.append(HookModule(name, module.__name__, None, None, "ok"))

    def _call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call ``hook`` on every plugin; a plugin that raises is named in the error."""
        caller: Callable[..., list[Any]] = getattr(self._pm.hook, hook)
        try:
            return caller(**kwargs)
        except Exception as exc:
            plugin = self._culprit(hook, exc)
            row = next((m for m in self.modules if m.name == plugin), None)
            origin = f" ({row.distribution} {row.version})" if row and row.distribution else ""
            raise HookError(
                f"hook {hook} of plugin {plugin!r}{origin} raised {type(exc).__name__}: {exc}"
            ) from exc

    def _culprit(self, hook: str, exc: BaseException) -> str:
        """The plugin whose implementation of ``hook`` raised ``exc`` (from the traceback)."""
        codes = {
            impl.function.__code__: impl.plugin_name
            for impl in getattr(self._pm.hook, hook).get_hookimpls()
            if hasattr(impl.function, "__code__")
        }
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code in codes:
                return codes[tb.tb_frame.f_code]
            tb = tb.tb_next
        return "unknown"

    def register(self, plugin: object, *, name: str | None = None) -> None:
        """Register any object carrying hook implementations (tests, notebooks)."""
        self._pm.register(plugin, name=name)

    def unregister(self, plugin: object) -> None:
        """Remove a plugin registered with :meth:`register`."""
        self._pm.unregister(plugin)

    # -- typed facade ---------------------------------------------------------------------
    def configure_run(self, config: dict[str, Any]) -> dict[str, Any]:
        """Let every plugin adjust a raw run configuration in place; returns it."""
        self._call("ephys_configure_run", config=config)
        return config

    def training_callbacks(self, config: RunConfig) -> list[Any]:
        """Every plugin's extra Lightning callbacks, flattened in plugin order."""
        callbacks: list[Any] = []
        for result in self._call("ephys_training_callbacks", config=config):
            if result:
                callbacks.extend(result)
        return callbacks

    def report_sections(self, summary: Mapping[str, Any], run_dir: Path) -> list[ReportSection]:
        """Every plugin's report sections, validated to be :class:`ReportSection` objects."""
        sections: list[ReportSection] = []
        for result in self._call("ephys_report_sections", summary=summary, run_dir=run_dir):
            items: Sequence[Any] = [result] if isinstance(result, ReportSection) else result or []
            for item in items:
                if not isinstance(item, ReportSection):
                    raise HookError(
                        f"ephys_report_sections must return ReportSection objects, got {item!r}"
                    )
                sections.append(item)
        return sections
