"""Turning pydantic validation errors into messages that name the full configuration path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

__all__ = ["describe_validation_error", "validate_model"]


def _dotted(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "<root>"


def describe_validation_error(err: ValidationError, prefix: str = "") -> list[str]:
    """One line per problem: ``path.to.key: what is wrong (got <value>)``."""
    lines = []
    for item in err.errors(include_url=False):
        path = _dotted(prefix, tuple(item["loc"]))
        message = item["msg"]
        if item["type"] == "value_error":  # a validator's own words, without pydantic's prefix
            message = message.removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (not a field of this section)"
        elif item["type"] != "missing" and "input" in item:
            shown = repr(item["input"])
            message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        lines.append(f"{path}: {message}")
    return lines


def validate_model(
    model: type[BaseModel], data: Mapping[str, Any] | BaseModel | None, prefix: str = ""
) -> BaseModel:
    """Validate ``data`` against ``model``, raising :class:`ConfigError` with full paths."""
    from pydantic import ValidationError

    from ephys_core.errors import ConfigError

    if isinstance(data, model):
        return data
    if data is None:
        data = {}
    elif not isinstance(data, Mapping):
        # pydantic models of another class are accepted by their fields
        dump = getattr(data, "model_dump", None)
        if dump is None:
            raise ConfigError(f"{prefix or '<root>'}: expected a mapping, got {data!r}")
        data = dump()
    try:
        return model.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, prefix)) from None
