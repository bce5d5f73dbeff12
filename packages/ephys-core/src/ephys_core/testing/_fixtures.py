"""Objects behind the pytest fixtures: an isolated plugin host and fake distributions."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ephys_core._policy import PluginPolicy
from ephys_core.plugins import PluginHost
from ephys_core.registry import Registry

__all__ = ["FakeDists", "IsolatedPlugins"]


class IsolatedPlugins:
    """A plugin host that sees no installed distribution: only what a test registers."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    def registry(self, kind: str) -> Registry:
        """The isolated registry of ``kind``."""
        return self.host.registry(kind)

    def register(self, kind: str, name: str, target: Any, *, replace: bool = False) -> Any:
        """Register a component for the duration of the test."""
        return self.host.registry(kind).register(name, target, replace=replace)

    @property
    def hooks(self) -> Any:
        """The isolated hook facade."""
        return self.host.hooks


class FakeDists:
    """Writes installed-looking distributions (``*.dist-info``) into a folder on ``sys.path``.

    Parameters
    ----------
    site
        The folder, already on ``sys.path``.
    host
        The plugin host that discovers only distributions in ``site``.
    """

    def __init__(self, site: Path, host: PluginHost) -> None:
        self.site = site
        self.host = host
        self.modules: set[str] = set()

    def add(
        self,
        name: str,
        version: str = "1.0",
        entry_points: Mapping[str, Mapping[str, str]] | None = None,
        files: Mapping[str, str] | None = None,
    ) -> Path:
        """Create a distribution and make the host rediscover plugins.

        Parameters
        ----------
        name, version
            Distribution metadata.
        entry_points
            ``{group: {name: "module:attr"}}``.
        files
            ``{relative path: source}`` written into the site folder (plugin modules).

        Returns
        -------
        Path
            The ``.dist-info`` folder.
        """
        info = self.site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = []
        for group, points in (entry_points or {}).items():
            lines.append(f"[{group}]")
            lines.extend(f"{key} = {value}" for key, value in points.items())
            lines.append("")
        (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
        for rel, source in (files or {}).items():
            path = self.site / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
            module = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            self.modules.add(module)
        importlib.invalidate_caches()
        self.host.refresh()
        return info

    def cleanup(self) -> None:
        """Forget modules imported from fake distributions."""
        for module in list(sys.modules):
            if module in self.modules or module.split(".")[0] in self.modules:
                del sys.modules[module]


def isolated_host() -> PluginHost:
    """A host with discovery off and a default (non-strict, nothing disabled) policy."""
    return PluginHost(discover=False, policy=PluginPolicy())


def fake_site_host(site: Path) -> PluginHost:
    """A host that discovers only distributions in ``site``."""
    return PluginHost(policy=PluginPolicy(), search_path=[str(site)])
