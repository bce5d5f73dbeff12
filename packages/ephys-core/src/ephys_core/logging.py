"""One logger hierarchy for ephys and its plugins.

Library code logs through :func:`get_logger` and never prints or configures the root logger.
Every logger lives under ``"ephys"``: ``ephys_models.training`` logs as
``ephys.models.training`` and a third-party ``ephys_foo.x`` as ``ephys.foo.x``, so one call to
:func:`set_log_level` (or the command line's ``-v``/``-q``) controls them all.
"""

from __future__ import annotations

import logging

__all__ = ["ROOT_LOGGER", "get_logger", "set_log_level"]

ROOT_LOGGER = "ephys"


def get_logger(name: str) -> logging.Logger:
    """Return the logger for module ``name`` inside the ``ephys`` hierarchy.

    Parameters
    ----------
    name
        Usually ``__name__``. ``ephys_<pkg>.<rest>`` maps to ``ephys.<pkg>.<rest>``; names
        already under ``ephys`` are kept; anything else is placed under ``ephys.``.
    """
    head, _, rest = name.partition(".")
    if head == ROOT_LOGGER:
        mapped = name
    elif head.startswith("ephys_"):
        mapped = ".".join(filter(None, (ROOT_LOGGER, head.removeprefix("ephys_"), rest)))
    else:
        mapped = f"{ROOT_LOGGER}.{name}"
    return logging.getLogger(mapped)


def set_log_level(level: int | str) -> None:
    """Set the level of every ephys logger (``"DEBUG"``, ``"INFO"``, ``logging.WARNING``, ...)."""
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(
                f"Invalid value for 'level'. Allowed values are DEBUG, INFO, WARNING, ERROR, "
                f"CRITICAL; got {level!r}."
            )
        level = resolved
    logging.getLogger(ROOT_LOGGER).setLevel(level)
