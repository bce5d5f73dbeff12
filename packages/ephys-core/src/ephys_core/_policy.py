"""Which plugins may load, and what happens when one fails: read from the environment.

``EPHYS_STRICT_PLUGINS=1``
    A plugin that fails to load raises at once instead of being recorded and warned about.
``EPHYS_DISABLE_PLUGINS=dist-a,dist-b,models:name``
    Distributions (or single components, written ``kind:name``) that are ignored entirely.
``EPHYS_LOAD_PLUGINS=dist-a,dist-b``
    If set, only these distributions' components are discovered (empty: none).
``EPHYS_TRACE_PLUGINS=1``
    Log every pluggy hook call at DEBUG level.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PluginPolicy", "normalize_distribution"]

_TRUE = {"1", "true", "yes", "on"}


def normalize_distribution(name: str) -> str:
    """Normalise a distribution name as PEP 503 does (``Ephys_Foo`` -> ``ephys-foo``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(value: str) -> frozenset[str]:
    return frozenset(
        item if ":" in item else normalize_distribution(item)
        for item in (part.strip() for part in value.split(","))
        if item
    )


@dataclass(frozen=True)
class PluginPolicy:
    """The plugin-loading policy in force.

    Attributes
    ----------
    strict
        Re-raise load failures at once.
    disabled
        Normalised distribution names and ``kind:name`` component references to ignore.
    allowlist
        If not ``None``, the only distributions whose components are discovered.
    trace
        Trace pluggy hook calls.
    """

    strict: bool = False
    disabled: frozenset[str] = frozenset()
    allowlist: frozenset[str] | None = None
    trace: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PluginPolicy:
        """Read the policy from environment variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        allow = env.get("EPHYS_LOAD_PLUGINS")
        return cls(
            strict=env.get("EPHYS_STRICT_PLUGINS", "").strip().lower() in _TRUE,
            disabled=_split(env.get("EPHYS_DISABLE_PLUGINS", "")),
            allowlist=None if allow is None else _split(allow),
            trace=env.get("EPHYS_TRACE_PLUGINS", "").strip().lower() in _TRUE,
        )

    def with_disabled(self, *items: str) -> PluginPolicy:
        """Return a copy that also disables ``items`` (distributions or ``kind:name``)."""
        return PluginPolicy(
            self.strict, self.disabled | _split(",".join(items)), self.allowlist, self.trace
        )

    def allows(self, distribution: str | None, kind: str, name: str) -> bool:
        """Whether a component from ``distribution`` may be discovered."""
        if f"{kind}:{name}" in self.disabled:
            return False
        if distribution is None:
            return True
        dist = normalize_distribution(distribution)
        if dist in self.disabled:
            return False
        return self.allowlist is None or dist in self.allowlist
