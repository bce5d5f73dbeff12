"""Per-kind registries of components, fed by entry points and programmatic registration.

Each kind (see :mod:`ephys_core.kinds`) has one :class:`Registry`; the plugin host
(:mod:`ephys_core.plugins`) creates them, and :func:`ephys_core.get_registry` returns the one in
use. Listing a registry reads
package metadata only; a component's module is imported the first time it is asked for, and the
result is cached. A component whose import fails is recorded (``status == "error"``); asking for
it raises :class:`~ephys_core.errors.PluginLoadError` with the real exception chained.

Examples
--------
>>> from ephys_core import get_registry
>>> models = get_registry("models")
>>> models.names("gpt*")                        # doctest: +SKIP
['gpt2meg']
>>> model = models.create("gpt2meg", n_layers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ephys_core._discovery import EntryPointRecord, resolve_target
from ephys_core._policy import PluginPolicy
from ephys_core.errors import DuplicateComponentError, PluginLoadError, UnknownComponentError
from ephys_core.kinds import Kind, get_kind

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["ComponentEntry", "Registry"]

Status = Literal["ok", "error", "not loaded"]


@dataclass
class ComponentEntry:
    """What a registry knows about one component, before or after loading it.

    Attributes
    ----------
    kind, name
        The registry and the key the component is registered under.
    target
        ``"module:attr"`` of the component.
    distribution, version
        The distribution that provides it (``None`` for programmatic registrations).
    origin
        ``"entry point"`` or ``"registered"`` (programmatic).
    status
        ``"not loaded"``, ``"ok"`` (imported and checked) or ``"error"``.
    error
        Why it cannot be used, when ``status == "error"``.
    """

    kind: str
    name: str
    target: str
    distribution: str | None
    version: str | None
    origin: str
    obj: Any = field(default=None, repr=False)
    status: Status = "not loaded"
    error: str | None = None
    cause: BaseException | None = field(default=None, repr=False)
    conflicts: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """Where the component comes from, for messages."""
        if self.distribution:
            return f"{self.distribution} {self.version} ({self.target})"
        return f"a programmatic registration ({self.target})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the row ``ephys plugins --json`` prints)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "distribution": self.distribution,
            "version": self.version,
            "origin": self.origin,
            "status": self.status,
            "error": self.error,
        }


def _describe_target(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


class Registry:
    """The components of one kind.

    Parameters
    ----------
    kind
        The kind this registry holds.
    records
        Entry points of the kind's group allowed by the policy, in deterministic order.
    policy
        Which plugins are allowed and whether failures are fatal.
    on_broken
        Called with the error when :meth:`load_all` meets a component that fails to load.
    """

    def __init__(
        self,
        kind: Kind,
        records: Sequence[EntryPointRecord] = (),
        *,
        policy: PluginPolicy | None = None,
        on_broken: Callable[[PluginLoadError], None] | None = None,
    ) -> None:
        self.kind = kind
        self._policy = policy or PluginPolicy()
        self._on_broken = on_broken or (lambda err: None)
        self._entries: dict[str, ComponentEntry] = {}
        for record in records:
            self._add_discovered(record)

    # -- building ---------------------------------------------------------------------------
    def _add_discovered(self, record: EntryPointRecord) -> None:
        entry = ComponentEntry(
            self.kind.name,
            record.name,
            record.value,
            record.distribution,
            record.version,
            "entry point",
        )
        first = self._entries.get(record.name)
        if first is None:
            self._entries[record.name] = entry
            return
        if self._policy.strict:
            raise DuplicateComponentError(self.kind.name, record.name, first.source, entry.source)
        first.conflicts.append(entry.source)
        first.status = "error"
        first.error = f"registered twice: by {first.source} and by {entry.source}"

    def register(self, name: str, target: Any, *, replace: bool = False) -> Callable[[], None]:
        """Register ``target`` under ``name`` from code (notebooks, tests, local plugin files).

        Parameters
        ----------
        name
            The registry key.
        target
            The component itself, or a ``"module:attr"`` string imported on first use.
        replace
            Replace an existing component of that name instead of raising.

        Returns
        -------
        Callable[[], None]
            Undoes the registration (restoring a replaced component).

        Raises
        ------
        DuplicateComponentError
            If ``name`` is taken and ``replace`` is false.
        PluginLoadError
            If ``target`` is an object lacking the attributes its kind requires.
        """
        is_string = isinstance(target, str)
        entry = ComponentEntry(
            self.kind.name,
            name,
            target if is_string else _describe_target(target),
            None,
            None,
            "registered",
            obj=None if is_string else target,
        )
        previous = self._entries.get(name)
        if previous is not None and not replace:
            raise DuplicateComponentError(self.kind.name, name, previous.source, entry.source)
        if not is_string:
            self._check(entry, target)
            entry.status = "ok"
        self._entries[name] = entry

        def unregister() -> None:
            if self._entries.get(name) is entry:
                if previous is None:
                    del self._entries[name]
                else:
                    self._entries[name] = previous

        return unregister

    # -- listing (imports nothing) ----------------------------------------------------------
    def names(self, pattern: str | None = None, exclude: str | None = None) -> list[str]:
        """Sorted component names, optionally filtered by fnmatch patterns."""
        names = sorted(self._entries)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if exclude:
            names = [n for n in names if not fnmatch.fnmatchcase(n, exclude)]
        return names

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[ComponentEntry]:
        """Every entry, sorted by name (no import)."""
        return [self._entries[name] for name in self.names()]

    def info(self, name: str) -> ComponentEntry:
        """The entry for ``name`` (no import)."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(
                self.kind.name, name, self._entries, noun=self.kind.singular
            ) from None

    def preflight(self) -> None:
        """Mark as broken the not-yet-loaded entries whose failure is visible without importing."""
        from ephys_core._preflight import preflight, save_cache

        for entry in self._entries.values():
            if entry.status == "not loaded":
                problem = preflight(entry.target)
                if problem is not None:
                    entry.status, entry.error = "error", problem
        save_cache()

    def errors(self) -> dict[str, str]:
        """Name -> reason for every entry known to be broken."""
        return {e.name: e.error or "" for e in self.entries() if e.status == "error"}

    # -- loading ----------------------------------------------------------------------------
    def _check(self, entry: ComponentEntry, obj: Any) -> None:
        missing = [attr for attr in self.kind.required if not hasattr(obj, attr)]
        if missing:
            raise PluginLoadError(
                kind=self.kind.name,
                name=entry.name,
                target=entry.target,
                distribution=entry.distribution,
                version=entry.version,
                reason=f"it lacks {', '.join(missing)}, required of every {self.kind.singular}",
            )

    def _failure(self, entry: ComponentEntry) -> PluginLoadError:
        return PluginLoadError(
            kind=self.kind.name,
            name=entry.name,
            target=entry.target,
            distribution=entry.distribution,
            version=entry.version,
            reason=entry.error or "unknown error",
        )

    def load(self, name: str) -> Any:
        """Import (once) and return the component registered as ``name``.

        Raises
        ------
        UnknownComponentError
            No such name; the message suggests close ones.
        DuplicateComponentError
            Two sources provide ``name``.
        PluginLoadError
            The component failed to import or lacks required attributes; the original
            exception is chained.
        """
        entry = self.info(name)
        if entry.conflicts:
            raise DuplicateComponentError(self.kind.name, name, entry.source, entry.conflicts[0])
        if entry.status == "ok":
            return entry.obj
        if entry.cause is not None:
            raise self._failure(entry) from entry.cause
        try:
            obj = entry.obj if entry.obj is not None else resolve_target(entry.target)
            self._check(entry, obj)
        except PluginLoadError as err:
            entry.status, entry.error, entry.cause = "error", err.reason, err
            raise
        except Exception as exc:
            entry.status, entry.error, entry.cause = "error", f"{type(exc).__name__}: {exc}", exc
            raise self._failure(entry) from exc
        entry.obj, entry.status, entry.error = obj, "ok", None
        return obj

    def load_all(self) -> dict[str, Any]:
        """Load every component; broken ones are recorded and reported, not raised.

        In strict mode (``EPHYS_STRICT_PLUGINS=1``) the first failure is raised instead.
        """
        loaded: dict[str, Any] = {}
        for name in self.names():
            try:
                loaded[name] = self.load(name)
            except (PluginLoadError, DuplicateComponentError) as err:
                if self._policy.strict:
                    raise
                if isinstance(err, PluginLoadError):
                    self._on_broken(err)
        return loaded

    def config_model(self, name: str) -> type[BaseModel]:
        """The pydantic model that validates the parameters of component ``name``."""
        return self.load(name).Config  # type: ignore[no-any-return]

    def create(
        self, name: str, config: Mapping[str, Any] | BaseModel | None = None, /, **overrides: Any
    ) -> Any:
        """Instantiate component ``name`` from a validated configuration.

        Parameters
        ----------
        name
            Registry key.
        config
            A mapping or an instance of the component's ``Config``; missing fields take their
            defaults.
        **overrides
            Field values that replace those in ``config``; ``None`` values are ignored, so
            unset options never clobber defaults.
        """
        cls = self.load(name)
        return cls(self.validate_params(name, config, **overrides))

    def validate_params(
        self,
        name: str,
        config: Mapping[str, Any] | BaseModel | None = None,
        /,
        *,
        prefix: str = "",
        **overrides: Any,
    ) -> BaseModel:
        """Validate parameters for ``name`` against its ``Config``; errors carry ``prefix``."""
        from ephys_core._validation import validate_model

        model = self.config_model(name)
        updates = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(config, model) and not updates:
            return config
        data: dict[str, Any] = {}
        if config is not None:
            data = config.model_dump() if hasattr(config, "model_dump") else dict(config)
        data.update(updates)
        return validate_model(model, data, prefix=prefix)

