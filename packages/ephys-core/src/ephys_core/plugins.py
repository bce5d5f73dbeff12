"""The plugin host: one discovery snapshot, the registries built from it, and the hooks.

Most code never touches the host directly: :func:`get_registry`, :func:`register` and
:func:`get_hooks` (also importable from :mod:`ephys_core`) use the current one. Tests swap in
an isolated host with :func:`use_host` (the ``ephys_registry`` fixture of
:mod:`ephys_core.testing` does this).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephys_core._discovery import EntryPointRecord, scan_entry_points
from ephys_core._policy import PluginPolicy, normalize_distribution
from ephys_core.errors import EphysError, PluginLoadError
from ephys_core.hooks import Hooks
from ephys_core.kinds import CLI_GROUP, HOOKS_GROUP, KINDS, get_kind
from ephys_core.logging import get_logger
from ephys_core.registry import Registry

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "PluginHost",
    "apply_plugin_options",
    "current_host",
    "get_hooks",
    "get_registry",
    "load_local_plugin",
    "register",
    "reset_host",
    "use_host",
]

logger = get_logger(__name__)


class PluginHost:
    """Everything discovered from installed plugins, created lazily and cached.

    Parameters
    ----------
    discover
        Read entry points from installed distributions. ``False`` gives an empty host where
        only programmatic registrations exist (isolated tests).
    policy
        Plugin policy; read from the environment by default.
    search_path
        Folders to discover distributions in (default: ``sys.path``).
    """

    def __init__(
        self,
        *,
        discover: bool = True,
        policy: PluginPolicy | None = None,
        search_path: list[str] | None = None,
    ) -> None:
        self.discover = discover
        self.search_path = search_path
        self.policy = policy if policy is not None else PluginPolicy.from_env()
        self._records: dict[str, list[EntryPointRecord]] | None = None
        self._registries: dict[str, Registry] = {}
        self._hooks: Hooks | None = None
        self._warned: set[str] = set()
        self._lock = threading.RLock()

    def records(self, group: str) -> list[EntryPointRecord]:
        """Entry points of ``group`` allowed by the policy (metadata only)."""
        with self._lock:
            if self._records is None:
                groups = [CLI_GROUP, HOOKS_GROUP]
                for spec in KINDS.values():
                    groups += [spec.group, spec.alias_group]
                self._records = scan_entry_points(groups, self.search_path) if self.discover else {}
            kind = group.removeprefix("ephys.")
            return [
                record
                for record in self._records.get(group, [])
                if self.policy.allows(record.distribution, kind, record.name)
            ]

    def refresh(self) -> None:
        """Forget discovered entry points and registries (after installing a distribution).

        Programmatic registrations are forgotten too.
        """
        with self._lock:
            self._records, self._hooks = None, None
            self._registries.clear()

    def registry(self, kind: str) -> Registry:
        """The registry of ``kind`` (a plural kind name)."""
        with self._lock:
            if kind not in self._registries:
                spec = KINDS[kind]
                self._registries[kind] = Registry(
                    spec,
                    self.records(spec.group),
                    aliases=self.records(spec.alias_group),
                    policy=self.policy,
                    on_broken=self.report_broken,
                )
            return self._registries[kind]

    def registries(self) -> list[Registry]:
        """All registries, in the order of :data:`ephys_core.kinds.KINDS`."""
        return [self.registry(kind) for kind in KINDS]

    @property
    def hooks(self) -> Hooks:
        """The typed hook facade, loading ``ephys.hooks`` modules on first use."""
        with self._lock:
            if self._hooks is None:
                self._hooks = Hooks(self)
            return self._hooks

    def report_broken(self, err: PluginLoadError) -> None:
        """Warn once per distribution (or component, if it has none) about a load failure."""
        key = normalize_distribution(err.distribution) if err.distribution else err.target
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning("%s", err)


_host: PluginHost | None = None
_host_lock = threading.Lock()


def current_host() -> PluginHost:
    """The plugin host in use, created from installed distributions on first call."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost()
        return _host


def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` (``"models"``, ``"losses"``, ...) in the current plugin host."""
    return current_host().registry(get_kind(kind).name)


def register(kind: str, name: str, target: Any, *, replace: bool = False) -> Callable[[], None]:
    """Register a component programmatically; see :meth:`Registry.register`."""
    return get_registry(kind).register(name, target, replace=replace)


def get_hooks() -> Hooks:
    """The hook facade of the current plugin host."""
    return current_host().hooks


def reset_host() -> None:
    """Forget the current host, so the next use rescans installed distributions."""
    global _host
    with _host_lock:
        _host = None


@contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Make ``host`` current inside the ``with`` block, restoring the previous one after."""
    global _host
    with _host_lock:
        previous, _host = _host, host
    try:
        yield host
    finally:
        with _host_lock:
            _host = previous


def apply_plugin_options(specs: list[str]) -> Callable[[], None]:
    """Apply the command line's ``-p/--plugin`` options to a fresh host made current.

    Parameters
    ----------
    specs
        ``path/to/file.py`` imports a local, unpackaged plugin file (which may call
        :func:`ephys_core.register` and define hook implementations); ``module.name`` imports an
        installed module the same way; ``no:DIST`` disables distribution ``DIST``.

    Returns
    -------
    Callable[[], None]
        Restores the previous host (the command line calls it when the command ends).
    """
    global _host
    previous = current_host()
    disabled = [spec[3:] for spec in specs if spec.startswith("no:")]
    host = PluginHost(
        discover=previous.discover,
        policy=previous.policy.with_disabled(*disabled),
        search_path=previous.search_path,
    )
    with _host_lock:
        _host = host

    def restore() -> None:
        global _host
        with _host_lock:
            if _host is host:
                _host = previous

    try:
        for spec in specs:
            if not spec.startswith("no:"):
                load_local_plugin(spec)
    except BaseException:
        restore()
        raise
    return restore


def load_local_plugin(spec: str) -> ModuleType:
    """Import a local plugin file (``path.py``) or module into the current host.

    The module may register components (:func:`ephys_core.register`); its hook
    implementations are registered with the hook manager.
    """
    host = current_host()
    try:
        if spec.endswith(".py"):
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise EphysError(f"plugin file {spec!r} does not exist")
            name = f"ephys_local_plugin_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise EphysError(f"cannot import plugin file {spec!r}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except EphysError:
        raise
    except Exception as exc:
        raise EphysError(f"plugin {spec!r} failed to import: {type(exc).__name__}: {exc}") from exc
    host.hooks.register_module(module, name=spec)
    return module
