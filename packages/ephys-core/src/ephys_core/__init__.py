"""ephys-core: the foundation of the ephys ecosystem.

Importing this package is cheap: it imports neither torch nor MNE, and its public names are
loaded on first access.

Public API
----------
get_registry, register
    Look up and register components (:mod:`ephys_core.registry`, :mod:`ephys_core.plugins`).
get_hooks, hookimpl
    The typed hook facade and the marker for hook implementations.
load_config, RunConfig
    The run configuration (:mod:`ephys_core.config`).
get_logger, set_log_level
    The ``ephys`` logger hierarchy.
EphysError, ConfigError, PluginLoadError, UnknownComponentError, DuplicateComponentError
    Errors meant for users.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ephys_core.config import RunConfig, load_config
    from ephys_core.errors import (
        ConfigError,
        DuplicateComponentError,
        EphysError,
        PluginLoadError,
        UnknownComponentError,
    )
    from ephys_core.hookspecs import hookimpl
    from ephys_core.logging import get_logger, set_log_level
    from ephys_core.plugins import get_hooks, get_registry, register

__all__ = [
    "ConfigError",
    "DuplicateComponentError",
    "EphysError",
    "PluginLoadError",
    "RunConfig",
    "UnknownComponentError",
    "__version__",
    "get_hooks",
    "get_logger",
    "get_registry",
    "hookimpl",
    "load_config",
    "register",
    "set_log_level",
]

_LAZY = {
    "ConfigError": "ephys_core.errors",
    "DuplicateComponentError": "ephys_core.errors",
    "EphysError": "ephys_core.errors",
    "PluginLoadError": "ephys_core.errors",
    "UnknownComponentError": "ephys_core.errors",
    "RunConfig": "ephys_core.config",
    "load_config": "ephys_core.config",
    "get_hooks": "ephys_core.plugins",
    "hookimpl": "ephys_core.hookspecs",
    "get_logger": "ephys_core.logging",
    "set_log_level": "ephys_core.logging",
    "get_registry": "ephys_core.plugins",
    "register": "ephys_core.plugins",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("ephys-core")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ephys_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
