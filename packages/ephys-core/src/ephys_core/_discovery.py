"""Reading entry points from installed package metadata, without importing any plugin."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ephys_core._policy import normalize_distribution

__all__ = ["EntryPointRecord", "resolve_target", "scan_entry_points"]


@dataclass(frozen=True)
class EntryPointRecord:
    """One entry point, as declared in a distribution's metadata.

    Attributes
    ----------
    group, name, value
        The entry point itself (``value`` is ``"module:attr"``).
    distribution, version
        The distribution that declares it (``None`` when the metadata does not say).
    """

    group: str
    name: str
    value: str
    distribution: str | None
    version: str | None

    @property
    def label(self) -> str:
        """Human-readable origin, e.g. ``ephys-models 0.1.0``."""
        if self.distribution is None:
            return f"entry point {self.name} = {self.value}"
        return f"{self.distribution} {self.version}"


def scan_entry_points(
    groups: Iterable[str], path: list[str] | None = None
) -> dict[str, list[EntryPointRecord]]:
    """Return the entry points of each group, sorted by distribution and name.

    Only package metadata is read; no plugin module is imported. ``path`` limits the search
    to these folders (default: ``sys.path``).
    """
    wanted = set(groups)
    found: dict[str, list[EntryPointRecord]] = {group: [] for group in wanted}
    seen: set[str] = set()
    dists = metadata.distributions() if path is None else metadata.distributions(path=path)
    for dist in dists:
        # read entry_points.txt first: the (slower) METADATA file is parsed only for the few
        # distributions that declare ephys entry points
        points = [ep for ep in dist.entry_points if ep.group in wanted]
        if not points:
            continue
        dist_name = dist.metadata["Name"]
        key = normalize_distribution(dist_name or "")
        if key in seen:  # the same distribution twice on sys.path: the first one wins
            continue
        seen.add(key)
        for ep in points:
            found[ep.group].append(
                EntryPointRecord(ep.group, ep.name, ep.value, dist_name, dist.version)
            )
    for records in found.values():
        records.sort(key=lambda r: ((r.distribution or "").lower(), r.name))
    return found


def resolve_target(target: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the object it names."""
    module_name, _, attr_path = target.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr_path.strip().split(".")):
        obj = getattr(obj, part)
    return obj
