"""Helpers shared by the conformance checks."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ephys_core.components import example_config_of
from ephys_core.errors import ConformanceError

__all__ = [
    "NotApplicable",
    "build",
    "check_config_roundtrip",
    "digest",
    "ensure",
    "primary",
    "structure",
]


class NotApplicable(Exception):
    """The check does not apply to this component (e.g. causality of a non-causal model)."""


def ensure(condition: bool, message: str) -> None:
    """Raise :class:`ConformanceError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConformanceError(message)


def build(component: type, workdir: Path | None = None, *, seed: int = 0) -> Any:
    """Instantiate ``component`` from its example configuration, seeding torch if present."""
    config = example_config_of(component, workdir)
    ensure(
        isinstance(config, component.Config),
        f"example_config() returned {type(config).__name__}, not {component.__name__}.Config",
    )
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.manual_seed(seed)
    return component(config)


def primary(value: Any) -> Any:
    """The primary tensor of a model input or output.

    That is the value itself for a tensor, the first element of a tuple or list, and for a
    mapping its ``logits`` entry if present, else its first entry.
    """
    if isinstance(value, tuple | list):
        return primary(value[0])
    if isinstance(value, dict):
        return primary(value["logits"] if "logits" in value else next(iter(value.values())))
    logits = getattr(value, "logits", None)
    return value if logits is None else logits


def structure(value: Any) -> Any:
    """Shape-and-dtype signature of a nested item, to compare items of one dataset."""
    if isinstance(value, tuple | list):
        return tuple(structure(v) for v in value)
    if isinstance(value, dict):
        return {k: structure(v) for k, v in value.items()}
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None:
        return (tuple(shape), str(dtype))
    return type(value).__name__


def digest(value: Any) -> str:
    """A content hash of arrays/tensors nested in ``value``."""
    h = hashlib.sha256()

    def visit(v: Any) -> None:
        if isinstance(v, tuple | list):
            for item in v:
                visit(item)
        elif isinstance(v, dict):
            for key in sorted(v):
                h.update(str(key).encode())
                visit(v[key])
        elif hasattr(v, "detach"):
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        elif hasattr(v, "tobytes"):
            h.update(v.tobytes())
        else:
            h.update(repr(v).encode())

    visit(value)
    return h.hexdigest()


def check_config_roundtrip(component: type, workdir: Path) -> None:
    """The example config survives JSON serialisation, and its schema can be produced."""
    config = example_config_of(component, workdir)
    again = component.Config.model_validate_json(config.model_dump_json())
    ensure(again == config, f"config changed through JSON: {config!r} -> {again!r}")
    component.Config.model_json_schema()
    undocumented = [
        name for name, field in component.Config.model_fields.items() if not field.description
    ]
    ensure(not undocumented, f"Config fields without a description: {', '.join(undocumented)}")
