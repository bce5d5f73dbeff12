"""Dotted ``key=value`` overrides of a raw configuration (``-o model.params.n_layers=4``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ephys_core.errors import ConfigError

__all__ = ["apply_overrides", "parse_override"]

_INDEX = re.compile(r"^(?P<key>[^\[\]]*)((?:\[\d+\])+)$")


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.split("."):
        match = _INDEX.match(piece)
        if match:
            if match["key"]:
                parts.append(match["key"])
            parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", piece))
        elif piece.isdigit():
            parts.append(int(piece))
        elif piece:
            parts.append(piece)
        else:
            raise ConfigError(f"override key {path!r}: empty component in dotted path")
    return parts


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Split ``"a.b[0].c=value"`` into a path and a YAML-parsed value.

    ``4`` becomes an int, ``[1, 2]`` a list, ``null`` None, ``true`` a bool; anything that is not
    valid YAML is kept as a string.
    """
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. model.params.n_layers=4")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return _split_path(key.strip()), parsed


def apply_overrides(config: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply overrides in order, creating intermediate mappings as needed; returns ``config``."""
    for text in overrides:
        path, value = parse_override(text)
        node: Any = config
        for depth, part in enumerate(path[:-1]):
            where = ".".join(str(p) for p in path[: depth + 1])
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ConfigError(f"override {text!r}: {where} is not an existing list item")
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {where} is inside a non-mapping value")
            node = node.setdefault(part, {})
        last = path[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise ConfigError(f"override {text!r}: no list item {last} to replace")
            node[last] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            parent = ".".join(str(p) for p in path[:-1])
            raise ConfigError(
                f"override {text!r}: {parent} holds {node!r}, not a mapping, so {last!r} is "
                "inside a non-mapping value"
            )
    return config
