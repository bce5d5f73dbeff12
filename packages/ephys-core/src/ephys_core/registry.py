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
from ephys_core.components import LazyComponent
from ephys_core.errors import DuplicateComponentError, PluginLoadError, UnknownComponentError
from ephys_core.kinds import Kind
from ephys_core.logging import get_logger

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["AliasEntry", "ComponentEntry", "Registry", "plugin_row"]

logger = get_logger(__name__)

Status = Literal["ok", "error", "not loaded"]


def plugin_row(item: Any, origin: str, status: str, error: str | None) -> dict[str, Any]:
    """One row of ``ephys plugins --json`` for anything with ``kind``, ``name``, ``target``,
    ``distribution`` and ``version`` (components, aliases, hook modules, commands)."""
    return {
        "kind": item.kind,
        "name": item.name,
        "target": item.target,
        "distribution": item.distribution,
        "version": item.version,
        "origin": origin,
        "status": status,
        "error": error,
    }


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
    declaration: LazyComponent | None = field(default=None, repr=False)
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
        return plugin_row(self, self.origin, self.status, self.error)


@dataclass
class AliasEntry:
    """A deprecated name that still resolves to a renamed component.

    Attributes
    ----------
    kind, name
        The registry and the old name.
    target
        The current name of the component.
    distribution, version
        Who declares the alias (``None`` for programmatic aliases).
    """

    kind: str
    name: str
    target: str
    distribution: str | None
    version: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (a row of ``ephys plugins --json``)."""
        return plugin_row(self, "alias", "alias", None)


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
    aliases
        Entry points of the kind's alias group (``old = "new"``).
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
        aliases: Sequence[EntryPointRecord] = (),
        policy: PluginPolicy | None = None,
        on_broken: Callable[[PluginLoadError], None] | None = None,
    ) -> None:
        self.kind = kind
        self._policy = policy or PluginPolicy()
        self._on_broken = on_broken or (lambda err: None)
        self._entries: dict[str, ComponentEntry] = {}
        self._aliases: dict[str, AliasEntry] = {}
        self._warned_aliases: set[str] = set()
        for record in records:
            self._add_discovered(record)
        for record in aliases:
            self._aliases.setdefault(
                record.name,
                AliasEntry(
                    kind.name,
                    record.name,
                    record.value.strip(),
                    record.distribution,
                    record.version,
                ),
            )

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
            The component itself, a :class:`~ephys_core.components.LazyComponent`
            declaration, or a ``"module:attr"`` string imported on first use.
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
        lazy = isinstance(target, LazyComponent)
        entry = ComponentEntry(
            self.kind.name,
            name,
            target.target
            if lazy
            else target
            if isinstance(target, str)
            else _describe_target(target),
            None,
            None,
            "registered",
            obj=None if isinstance(target, str) or lazy else target,
            declaration=target if lazy else None,
        )
        previous = self._entries.get(name)
        if previous is not None and not replace:
            raise DuplicateComponentError(self.kind.name, name, previous.source, entry.source)
        if entry.obj is not None:
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
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[ComponentEntry]:
        """Every entry, sorted by name (no import)."""
        return [self._entries[name] for name in self.names()]

    def aliases(self) -> list[AliasEntry]:
        """Deprecated names and the components they resolve to, sorted by name (no import)."""
        return [self._aliases[name] for name in sorted(self._aliases)]

    def register_alias(self, old: str, new: str) -> Callable[[], None]:
        """Make ``old`` a deprecated name of component ``new``; returns an undo function.

        Raises
        ------
        DuplicateComponentError
            If ``old`` is the name of a component or already an alias.
        """
        if old in self._entries or old in self._aliases:
            taken = self._entries[old].source if old in self._entries else "an alias"
            raise DuplicateComponentError(self.kind.name, old, taken, f"an alias of {new!r}")
        alias = AliasEntry(self.kind.name, old, new, None, None)
        self._aliases[old] = alias

        def unregister() -> None:
            if self._aliases.get(old) is alias:
                del self._aliases[old]

        return unregister

    def canonical(self, name: str) -> str:
        """The current name of ``name``: itself, or the component a deprecated alias names.

        Using an alias logs a deprecation warning once per name.

        Raises
        ------
        UnknownComponentError
            Neither a component nor an alias; the message suggests close names.
        """
        if name in self._entries:
            return name
        alias = self._aliases.get(name)
        if alias is None:
            raise UnknownComponentError(
                self.kind.name,
                name,
                [*self._entries, *self._aliases],
                noun=self.kind.singular,
            )
        if alias.target not in self._entries:
            raise UnknownComponentError(
                self.kind.name,
                alias.target,
                self._entries,
                noun=f"{self.kind.singular} (the new name of the alias {name!r})",
            )
        if name not in self._warned_aliases:
            self._warned_aliases.add(name)
            origin = f" (declared by {alias.distribution})" if alias.distribution else ""
            logger.warning(
                "%s %r is a deprecated name of %r%s; use %r",
                self.kind.singular,
                name,
                alias.target,
                origin,
                alias.target,
            )
        return alias.target

    def info(self, name: str) -> ComponentEntry:
        """The entry for ``name`` or the component a deprecated alias names (no import)."""
        return self._entries[self.canonical(name)]

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

    def _usable(self, name: str) -> ComponentEntry:
        """The entry of ``name`` (or of what its alias names), refusing duplicates and failures."""
        entry = self.info(name)
        if entry.conflicts:
            raise DuplicateComponentError(
                self.kind.name, entry.name, entry.source, entry.conflicts[0]
            )
        if entry.cause is not None:
            raise self._failure(entry) from entry.cause
        return entry

    def _guarded(self, entry: ComponentEntry, step: Callable[[], Any]) -> Any:
        """Run an import step of ``entry``, recording and re-raising any failure."""
        try:
            return step()
        except PluginLoadError as err:
            entry.status, entry.error, entry.cause = "error", err.reason, err
            raise
        except Exception as exc:
            entry.status, entry.error, entry.cause = "error", f"{type(exc).__name__}: {exc}", exc
            raise self._failure(entry) from exc

    def _declared(self, entry: ComponentEntry) -> Any:
        """What the entry point names: a :class:`LazyComponent` or the component itself.

        Importing a declaration's module is cheap by design; the component it names is not
        imported here.
        """
        if entry.declaration is not None:
            return entry.declaration
        if entry.obj is not None:
            return entry.obj

        def resolve() -> Any:
            obj = resolve_target(entry.target)
            if not isinstance(obj, LazyComponent):
                self._check(entry, obj)
            return obj

        obj = self._guarded(entry, resolve)
        if isinstance(obj, LazyComponent):
            entry.declaration = obj
        else:
            entry.obj, entry.status, entry.error = obj, "ok", None
        return obj

    def load(self, name: str) -> Any:
        """Import (once) and return the component registered as ``name``.

        ``name`` may be a deprecated alias. A :class:`~ephys_core.components.LazyComponent`
        declaration is resolved to the component it names.

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
        entry = self._usable(name)
        if entry.status == "ok":
            return entry.obj
        declared = self._declared(entry)
        if not isinstance(declared, LazyComponent):
            return declared

        def resolve() -> Any:
            obj = resolve_target(declared.target)
            self._check(entry, obj)
            self._check_declaration(entry, declared, obj)
            return obj

        obj = self._guarded(entry, resolve)
        entry.obj, entry.status, entry.error = obj, "ok", None
        return obj

    def _check_declaration(self, entry: ComponentEntry, declared: LazyComponent, obj: Any) -> None:
        problems = []
        if getattr(obj, "Config", None) is not declared.Config:
            problems.append(
                f"its Config is not the declared {declared.Config.__module__}."
                f"{declared.Config.__qualname__}"
            )
        problems += [
            f"its {key} is {getattr(obj, key, None)!r}, declared {value!r}"
            for key, value in declared.metadata.items()
            if getattr(obj, key, None) != value
        ]
        if problems:
            raise PluginLoadError(
                kind=self.kind.name,
                name=entry.name,
                target=entry.target,
                distribution=entry.distribution,
                version=entry.version,
                reason=f"{declared.target} does not match its declaration: " + "; ".join(problems),
            )

    def metadata(self, name: str, key: str, default: Any = None) -> Any:
        """A class attribute of component ``name`` (``metrics``, ``causal``, ...).

        Read from the :class:`~ephys_core.components.LazyComponent` declaration when it
        declares ``key``, so that the component is not imported; otherwise from the
        component itself.
        """
        declared = self._declared(self._usable(name))
        if isinstance(declared, LazyComponent):
            if key in declared.metadata:
                return declared.metadata[key]
            declared = self.load(name)
        return getattr(declared, key, default)

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
        """The pydantic model that validates the parameters of component ``name``.

        Components registered through a :class:`~ephys_core.components.LazyComponent` are
        not imported.
        """
        return self._declared(self._usable(name)).Config  # type: ignore[no-any-return]

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
