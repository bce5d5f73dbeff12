"""The exceptions ephys raises for problems a user can act on.

Every error ephys raises on purpose derives from :class:`EphysError`; the command line prints
those as a single line (a traceback only with ``--debug``). Anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

__all__ = [
    "ComponentSpecError",
    "ConfigError",
    "ConformanceError",
    "DuplicateComponentError",
    "EphysError",
    "HookError",
    "MissingDependencyError",
    "PluginLoadError",
    "UnknownComponentError",
]


class EphysError(Exception):
    """Base class of every error that ephys raises for a user to act on."""


class ConfigError(EphysError, ValueError):
    """A configuration is invalid.

    Parameters
    ----------
    problems
        One message per problem, each starting with the dotted path of the offending key
        (``model.params.n_layers: ...``).
    source
        Where the configuration came from (a file name), if known.
    hint
        What to do about it, shown after the problems.
    """

    def __init__(
        self,
        problems: Iterable[str] | str,
        *,
        source: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source, self.hint = source, hint
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            message = f"invalid configuration{where}: {self.problems[0]}"
        else:
            listed = "\n".join(f"  - {p}" for p in self.problems)
            message = f"invalid configuration{where} ({len(self.problems)} problems):\n{listed}"
        if hint:
            message += ("\n  " if len(self.problems) > 1 else "; ") + hint
        super().__init__(message)


class ComponentSpecError(ConfigError):
    """A configuration names a component that cannot be used (unknown, broken or invalid)."""


class UnknownComponentError(EphysError, LookupError):
    """No component of this kind has this name.

    The message lists the closest names and how many exist, and points at ``ephys plugins``.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        available: Iterable[str],
        *,
        noun: str | None = None,
        listing: bool = True,
    ) -> None:
        names = sorted(available)
        self.kind, self.name, self.available = kind, name, names
        close = get_close_matches(name, names, n=3, cutoff=0.5)
        if close:
            hint = "did you mean " + ", ".join(repr(c) for c in close) + "?"
        elif names:
            hint = f"{len(names)} available: " + ", ".join(names[:8])
            hint += ", ..." if len(names) > 8 else ""
        else:
            hint = "none is installed"
        suffix = f" (run `ephys plugins --kind {kind}` to list them)" if listing else ""
        super().__init__(f"unknown {noun or kind} {name!r}; {hint}{suffix}")

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return str(self.args[0])


class DuplicateComponentError(EphysError):
    """Two sources register the same name for the same kind."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        self.kind, self.name, self.sources = kind, name, (first, second)
        super().__init__(
            f"{kind} component {name!r} is registered twice: by {first} and by {second}; "
            "uninstall or disable one of them (EPHYS_DISABLE_PLUGINS=<distribution>)"
        )


class PluginLoadError(EphysError, ImportError):
    """A plugin's entry point could not be imported or does not provide a usable component.

    The original exception is chained as ``__cause__``.
    """

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        target: str,
        distribution: str | None,
        version: str | None,
        reason: str,
    ) -> None:
        self.kind, self.name, self.target = kind, name, target
        self.distribution, self.version, self.reason = distribution, version, reason
        origin = f"{distribution} {version}" if distribution else "a programmatic registration"
        remedy = (
            f"; to silence it, uninstall {distribution} or set EPHYS_DISABLE_PLUGINS={distribution}"
            if distribution
            else ""
        )
        super().__init__(
            f"{kind} component {name!r} from {origin} ({target}) failed to load: {reason}{remedy}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class HookError(EphysError):
    """A plugin's hook implementation failed while it ran; the message names the plugin.

    The original exception is chained as ``__cause__``.
    """


class MissingDependencyError(EphysError, ImportError):
    """An optional dependency is needed for a feature and is not installed."""

    def __init__(self, what: str, requirement: str, install: str) -> None:
        self.requirement, self.install = requirement, install
        super().__init__(f"{what} needs {requirement}, which is not installed: {install}")

    def __str__(self) -> str:
        return str(self.args[0])


class ConformanceError(EphysError, AssertionError):
    """A component violates the contract of its kind (raised by :mod:`ephys_core.testing`)."""
