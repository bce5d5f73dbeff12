"""Helpers shared by the MNE-based stages: quiet MNE calls, annotations, provenance.

Private to :mod:`ephys_data.stages`; importing it costs nothing (MNE is imported on use).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ephys_core.errors import MissingDependencyError
from ephys_data.recording import Recording, RecordingError

if TYPE_CHECKING:
    import mne

__all__ = [
    "DATA_TYPES",
    "add_annotations",
    "add_step",
    "import_optional",
    "jsonable",
    "mne_quiet",
    "require_channels",
    "types_present",
]

#: Channel types the stages treat as brain signals (detection, Maxwell, ICA, inverse).
DATA_TYPES = ("mag", "grad", "eeg", "seeg", "ecog", "dbs")

_QUIET_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


@contextlib.contextmanager
def mne_quiet(name: str, logger: logging.Logger) -> Iterator[None]:
    """Run MNE code without its console chatter; its warnings go to ``logger``.

    MNE prints progress at INFO level and reports problems with :mod:`warnings`. Inside this
    context MNE only emits warnings, and each one is logged (prefixed with the session name
    ``name``) instead of being shown or raised.
    """
    import mne

    with warnings.catch_warnings(record=True) as caught, mne.use_log_level("WARNING"):
        warnings.simplefilter("always")
        try:
            yield
        finally:
            counts: dict[tuple[str, int], int] = {}
            for item in caught:  # repeated warnings (one per chunk, per channel) logged once
                level = (
                    logging.DEBUG
                    if issubclass(item.category, _QUIET_CATEGORIES)
                    else logging.WARNING
                )
                key = (str(item.message), level)
                counts[key] = counts.get(key, 0) + 1
            for (message, level), count in counts.items():
                suffix = f" ({count} times)" if count > 1 else ""
                logger.log(level, "%s: %s%s", name, message, suffix)


def import_optional(module: str, what: str, requirement: str, install: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` saying how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(what, requirement, install) from err


def types_present(raw: mne.io.BaseRaw, wanted: Sequence[str] = DATA_TYPES) -> list[str]:
    """The channel types of ``wanted`` that ``raw`` has, in the order of ``wanted``."""
    present = set(raw.get_channel_types())
    return [t for t in wanted if t in present]


def add_annotations(
    raw: mne.io.BaseRaw,
    onsets: Sequence[float] | np.ndarray,
    durations: Sequence[float] | np.ndarray,
    descriptions: Sequence[str],
) -> None:
    """Append annotations to ``raw`` in place; ``onsets`` are seconds from its first sample.

    MNE counts annotation onsets from the measurement start; when the recording has no
    measurement date it stores them shifted by ``raw.first_time`` yet shifts them again when
    they are set, so the existing ones are re-expressed before appending.
    """
    onsets = np.asarray(onsets, dtype=np.float64)
    if onsets.size == 0:
        return
    annotations = raw.annotations.copy()
    if annotations.orig_time is None:
        annotations.onset = annotations.onset - raw.first_time
        offset = 0.0
    else:
        offset = float(raw.first_time)
    annotations.append(onsets + offset, np.asarray(durations, dtype=np.float64), list(descriptions))
    raw.set_annotations(annotations)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def add_step(recording: Recording, stage: str, **details: Any) -> Recording:
    """A copy of ``recording`` whose ``provenance["steps"]`` ends with this stage's record."""
    steps = list(recording.provenance.get("steps", []))
    steps.append({"stage": stage, **jsonable(details)})
    return recording.with_provenance(steps=steps)


def require_channels(recording: Recording, picks: Sequence[int], what: str, stage: str) -> None:
    """Raise a clear error when a stage finds no channels to work on."""
    if len(picks) == 0:
        types = sorted(set(recording.ch_types))
        raise RecordingError(
            f"{recording.name}: stage {stage!r} found no {what} (channel types present: "
            f"{', '.join(types) or 'none'}); check the `picks` of `read` or drop this stage"
        )
