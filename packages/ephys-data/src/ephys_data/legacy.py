"""Importing datasets prepared by the previous generation of this toolkit.

Those datasets are folders of sessions, each holding numbered chunk files ``0.npy, 1.npy, ...``
that contain a *pickled* dict (``data``, ``ch_names``, ``ch_types``, ``pos_2d``, ``sfreq`` and
optional ``pos_3d``, ``ori_3d``, ``bad_channels``, ``mulaw_mu``). Unpickling can run arbitrary
code, so :func:`import_legacy` refuses to read them unless explicitly allowed.

Every session is imported on its own: one whose chunks are unreadable, malformed (missing
``ch_names`` or ``sfreq``, shapes that disagree) or whose folder name is not a usable session
name is recorded in the manifest's ``failures``, and the others are imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.errors import EphysError
from ephys_core.logging import get_logger
from ephys_data.format import (
    check_session_name,
    clean_leftovers,
    folder_lock,
    write_manifest,
    write_session,
)
from ephys_data.recording import Recording

__all__ = ["LegacyImportError", "import_legacy"]

logger = get_logger(__name__)

# FIFF channel kinds the old chunks stored as integers
_KINDS = {1: "meg", 2: "eeg", 3: "stim", 202: "eog", 302: "emg", 402: "ecg", 502: "misc"}


class LegacyImportError(EphysError):
    """A legacy dataset cannot be imported (not allowed, missing or inconsistent chunks)."""


def _chunks(session: Path) -> list[Path]:
    files = [p for p in session.glob("*.npy") if re.fullmatch(r"\d+", p.stem)]
    return sorted(files, key=lambda p: int(p.stem))


def _load_chunk(path: Path) -> dict[str, Any]:
    try:
        value = np.load(path, allow_pickle=True)
        chunk = value.item() if value.dtype == object and value.shape == () else None
    except Exception as err:
        raise LegacyImportError(f"{path}: cannot read chunk: {err}") from None
    if not isinstance(chunk, dict) or "data" not in chunk:
        raise LegacyImportError(f"{path}: not a legacy chunk (a pickled dict with 'data')")
    return chunk


def _require(chunk: dict[str, Any], key: str, path: Path) -> Any:
    if chunk.get(key) is None:
        raise LegacyImportError(f"{path}: the chunk has no {key!r}; not a complete legacy chunk")
    return chunk[key]


def _session_recording(session: Path) -> Recording:
    name = check_session_name(session.name, what="legacy session folder name")
    files = _chunks(session)
    if not files:
        raise LegacyImportError(f"{session}: no numbered chunk files")
    chunks = [_load_chunk(p) for p in files]
    first = chunks[0]
    names = [str(n) for n in np.atleast_1d(_require(first, "ch_names", files[0]))]
    try:
        sfreq = float(_require(first, "sfreq", files[0]))
    except (TypeError, ValueError):
        raise LegacyImportError(
            f"{files[0]}: 'sfreq' is not a number: {first['sfreq']!r}"
        ) from None
    if not sfreq > 0:
        raise LegacyImportError(f"{files[0]}: 'sfreq' must be positive, got {sfreq}")
    arrays = []
    for path, chunk in zip(files, chunks, strict=True):
        array = np.asarray(chunk["data"])
        if array.ndim != 2 or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
        ):
            raise LegacyImportError(
                f"{path}: 'data' must be a 2-D numeric array (rows, samples), got "
                f"{array.dtype} {array.shape}"
            )
        arrays.append(array)
    if any(a.shape[0] != arrays[0].shape[0] for a in arrays):
        raise LegacyImportError(f"{session}: chunks disagree on the number of rows")
    data = np.concatenate(arrays, axis=1)
    labels = None
    if data.shape[0] == len(names) + 1:  # a condition track stored as the last row
        labels, data = data[-1].astype(np.int16), data[:-1]
    elif data.shape[0] != len(names):
        raise LegacyImportError(
            f"{session}: {data.shape[0]} data rows for {len(names)} channel names"
        )
    raw_types = first.get("ch_types")
    raw_types = ["misc"] * len(names) if raw_types is None else list(np.atleast_1d(raw_types))
    if len(raw_types) != len(names):
        raise LegacyImportError(
            f"{files[0]}: {len(raw_types)} channel types for {len(names)} channel names"
        )
    types = [
        _KINDS.get(int(t), str(t)) if isinstance(t, int | np.integer) else str(t) for t in raw_types
    ]
    transforms = []
    if "mulaw_mu" in first:
        # the old pipeline never stored the amplitude it divided by
        transforms.append({"kind": "mulaw", "mu": int(first["mulaw_mu"]), "amplitude": None})
    optional = {}
    for key in ("pos_2d", "pos_3d", "ori_3d"):
        if first.get(key) is None:
            continue
        value = np.asarray(first[key], dtype=float)
        width = 2 if key == "pos_2d" else 3
        if value.shape != (len(names), width):
            raise LegacyImportError(
                f"{files[0]}: {key!r} has shape {value.shape}, expected ({len(names)}, {width})"
            )
        optional[key] = value
    return Recording.from_array(
        data if np.issubdtype(data.dtype, np.integer) else data.astype(np.float32),
        sfreq,
        names,
        types,
        name=name,
        units=("",) * len(names),
        bads=tuple(str(b) for b in (first.get("bad_channels") or ())),
        labels=labels,
        transforms=tuple(transforms),
        **optional,
    )


def import_legacy(
    src: str | Path,
    dst: str | Path,
    *,
    allow_pickle: bool = False,
    on_session: Callable[[str, str | None], None] | None = None,
) -> dict[str, Any]:
    """Convert a legacy chunked dataset at ``src`` into a prepared dataset at ``dst``.

    Parameters
    ----------
    src
        Folder of session folders with pickled ``<i>.npy`` chunks.
    dst
        Prepared dataset root to write. The import holds an exclusive lock on
        ``<dst>/.lock`` while it works and first removes what killed runs left there.
    allow_pickle
        Must be ``True``: reading the chunks unpickles them, which can execute code. Only
        import data you trust.
    on_session
        Called with ``(name, error or None)`` after each session.

    Returns
    -------
    dict
        The manifest written; sessions that could not be imported are in ``failures``.

    Raises
    ------
    LegacyImportError
        Pickle not allowed, or no session folders in ``src``.
    FolderLockedError
        Another run is writing into ``dst``.
    """
    if not allow_pickle:
        raise LegacyImportError(
            "legacy chunks are pickled, and unpickling can run arbitrary code; import only data "
            "you trust, with --allow-pickle (allow_pickle=True)"
        )
    src, dst = Path(src), Path(dst)
    try:
        sessions = sorted(p for p in src.iterdir() if p.is_dir()) if src.is_dir() else []
    except OSError as err:
        raise LegacyImportError(f"{src}: cannot list its folders: {err.strerror or err}") from None
    if not sessions:
        raise LegacyImportError(f"{src}: no session folders to import")
    if dst.exists() and not dst.is_dir():
        raise LegacyImportError(f"{dst} exists and is not a folder; choose a folder")
    dst.mkdir(parents=True, exist_ok=True)
    failures = []
    with folder_lock(dst) as locked:
        if locked:
            clean_leftovers(dst)
        for folder in sessions:
            error = None
            try:
                recording = _session_recording(folder)
                write_session(
                    dst,
                    recording,
                    {"imported_from": str(folder), "source_format": "legacy pickled chunks"},
                )
            except Exception as err:  # one malformed session must not stop the others
                error = str(err) if isinstance(err, EphysError) else f"{type(err).__name__}: {err}"
                failures.append({"name": folder.name, "source": str(folder), "error": error})
                logger.warning("%s: not imported: %s", folder, error)
            if on_session:
                on_session(folder.name, error)
        return write_manifest(dst, {"imported_from": str(src), "failures": failures})
