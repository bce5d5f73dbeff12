"""The prepared-dataset format: memory-mappable arrays plus JSON sidecars, written atomically.

Layout of a prepared dataset root::

    <root>/
      manifest.json                 # sessions (with their sidecar digests), totals, pipelines
      .lock                         # held by the run writing into the folder (empty file)
      sessions/<name>/data.npy      # (C, T) float32 signal, or the smallest uint for codes
      sessions/<name>/labels.npy    # (T,) int16 condition labels (optional)
      sessions/<name>/meta.json     # the sidecar (see SessionMeta)

Nothing is pickled. A session folder appears only once complete: it is written under a hidden
temporary name and renamed into place, so an interrupted run leaves nothing a reader accepts
(and the next run into the folder removes what it left, see :func:`clean_leftovers`). Outputs
are deterministic (no timestamps), so a resumed run produces the same bytes as an uninterrupted
one made with the same thread settings.

Integrity: the sidecar records the SHA-256 of ``data.npy``'s samples (``data_sha256``) and of
the labels (``labels.sha256``), and its own digest (``meta_sha256``, the SHA-256 of the sidecar
as canonical JSON without that field), which the manifest repeats for every session. Opening a
session checks the sidecar digest (cheap); :meth:`Session.verify` also re-hashes the arrays.
Sessions of format ``ephys-session/1`` (written before sidecar digests existed) are still read.

Session names and the file names a sidecar refers to must be plain names (no path separators,
not ``.``/``..``, not hidden), so nothing is read or written outside the dataset root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.errors import EphysError
from ephys_core.files import (
    FolderLockedError,
    exclusive_lock,
    folder_name_problem,
    remove_leftovers,
    temporary_sibling,
)
from ephys_core.logging import get_logger
from ephys_data.recording import Recording

__all__ = [
    "FORMAT",
    "LOCK_FILE",
    "READABLE_FORMATS",
    "DatasetFormatError",
    "FolderLockedError",
    "PreparedDataset",
    "Session",
    "SessionNameError",
    "check_session_name",
    "clean_leftovers",
    "count_non_finite",
    "folder_lock",
    "iter_sessions",
    "meta_digest",
    "non_finite_samples",
    "read_manifest",
    "session_dir",
    "write_manifest",
    "write_session",
]

logger = get_logger(__name__)

FORMAT = "ephys-session/2"
#: Session formats this version reads (``/1`` has no sidecar digest and no non-finite count).
READABLE_FORMATS = ("ephys-session/1", FORMAT)
MANIFEST_FORMAT = "ephys-dataset/1"
SESSIONS = "sessions"
#: The lock file a run writing into a dataset root holds (``fcntl.flock``) while it works.
LOCK_FILE = ".lock"

#: sidecar keys every session has, with their JSON types
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "sfreq": (int, float),
    "n_channels": int,
    "n_times": int,
    "dtype": str,
    "data_file": str,
    "data_sha256": str,
    "ch_names": list,
    "ch_types": list,
}
#: the blocks the non-finite scan reads at a time (bytes)
_SCAN_BYTES = 1 << 26


class DatasetFormatError(EphysError):
    """A prepared dataset or one of its files is missing, truncated or inconsistent."""


class SessionNameError(EphysError, ValueError):
    """A session name is not a plain folder name (separators, ``..``, hidden, empty)."""


def check_session_name(name: Any, what: str = "session name") -> str:
    """``name`` if it is a usable session (folder) name, else a :class:`SessionNameError`.

    The rule is :func:`ephys_core.files.folder_name_problem`: a non-empty name of at most 255
    bytes without path separators or control characters, not ``.`` or ``..`` and not hidden
    (hidden names are the temporary folders of unfinished writes).
    """
    problem = folder_name_problem(name)
    if problem:
        raise SessionNameError(
            f"{what} {name!r} is not usable: {problem}. Use a plain folder name such as "
            "'sub-01_ses-1_task-rest' (letters, digits, '_', '-', '.')"
        )
    return name


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a sidecar")


def _dump_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=1, sort_keys=True, default=_json_default)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def meta_digest(meta: Mapping[str, Any]) -> str:
    """SHA-256 of a parsed sidecar as canonical JSON (sorted keys, no spaces), without the
    ``meta_sha256`` field itself."""
    body = {key: value for key, value in meta.items() if key != "meta_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _array_digest(array: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def _save_array(path: Path, array: np.ndarray) -> str:
    """Write ``array`` as .npy, fsync it, and return the SHA-256 of its bytes."""
    array = np.ascontiguousarray(array)
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return _array_digest(array)


def _column_blocks(array: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` column blocks of a ``(C, T)`` array of about ``_SCAN_BYTES`` each."""
    rows = max(1, array.shape[0]) if array.ndim == 2 else 1
    width = max(1, _SCAN_BYTES // (rows * max(1, array.itemsize)))
    n = array.shape[-1] if array.ndim else 0
    for start in range(0, n, width):
        yield start, np.asarray(array[..., start : start + width])


def count_non_finite(array: np.ndarray) -> int:
    """How many samples of ``array`` are NaN or infinite; 0 for integer arrays.

    Reads a ``(C, T)`` array in blocks of columns, so scanning a memory map stays cheap.
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.inexact):
        return 0
    blocks = _column_blocks(array)
    return int(sum(block.size - np.count_nonzero(np.isfinite(block)) for _, block in blocks))


def non_finite_samples(array: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: the time samples of a ``(C, T)`` array where any channel is NaN or inf."""
    out = np.zeros(array.shape[-1], dtype=bool)
    if not np.issubdtype(array.dtype, np.inexact):
        return out
    for start, block in _column_blocks(array):
        out[start : start + block.shape[-1]] = ~np.isfinite(block).all(axis=0)
    return out


def session_dir(root: Path, name: str) -> Path:
    """Folder of session ``name`` under dataset ``root`` (the name is checked first)."""
    return Path(root) / SESSIONS / check_session_name(name)


def _storage_array(recording: Recording) -> np.ndarray:
    data = recording.get_data()
    if np.issubdtype(data.dtype, np.integer):
        return data  # codes are stored as produced (smallest unsigned type)
    return data.astype(np.float32, copy=False)


def write_session(root: Path, recording: Recording, provenance: Mapping[str, Any]) -> Path:
    """Write ``recording`` as session ``recording.name`` under ``root``, atomically.

    An existing session of that name is replaced; readers never see a half-written one. The
    sidecar records the number of non-finite samples (``non_finite``), the hashes of the
    arrays and its own digest.

    Returns
    -------
    Path
        The session folder.

    Raises
    ------
    SessionNameError
        ``recording.name`` is not a plain folder name.
    """
    final = session_dir(root, recording.name)
    recording.check_channels()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    tmp.mkdir()
    try:
        data = _storage_array(recording)
        digest = _save_array(tmp / "data.npy", data)
        labels = None
        if recording.labels is not None:
            if len(recording.labels) != data.shape[1]:
                raise DatasetFormatError(
                    f"{recording.name}: {len(recording.labels)} labels for {data.shape[1]} samples"
                )
            labels_digest = _save_array(
                tmp / "labels.npy", np.asarray(recording.labels, dtype=np.int16)
            )
            labels = {
                "file": "labels.npy",
                "names": {str(k): v for k, v in recording.label_names.items()},
                "sha256": labels_digest,
            }
        meta = {
            "format": FORMAT,
            "name": recording.name,
            "dataset": recording.dataset,
            "subject": recording.subject,
            "session": recording.session,
            "task": recording.task,
            "run": recording.run,
            "sfreq": recording.sfreq,
            "n_channels": int(data.shape[0]),
            "n_times": int(data.shape[1]),
            "dtype": data.dtype.str,
            "data_file": "data.npy",
            "data_sha256": digest,
            "non_finite": count_non_finite(data),
            "ch_names": list(recording.ch_names),
            "ch_types": list(recording.ch_types),
            "units": list(recording.units),
            "pos_2d": recording.pos_2d,
            "pos_3d": recording.pos_3d,
            "ori_3d": recording.ori_3d,
            "coil_x_3d": recording.coil_x_3d,
            "bads": list(recording.bads),
            "labels": labels,
            "annotations": [dict(a) for a in recording.annotations],
            "transforms": [dict(t) for t in recording.transforms],
            "provenance": {**recording.provenance, **provenance},
        }
        # the digest covers the sidecar exactly as a reader will parse it
        meta = json.loads(json.dumps(meta, default=_json_default))
        meta["meta_sha256"] = meta_digest(meta)
        _dump_json(tmp / "meta.json", meta)
        old = None
        if final.exists():
            old = temporary_sibling(final, "old")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _check_file_name(value: Any, meta_path: Path, key: str) -> str:
    """A file name a sidecar refers to, if it is a plain name inside the session folder."""
    try:
        return check_session_name(value, what=f"{key}")
    except SessionNameError:
        raise DatasetFormatError(
            f"{meta_path}: {key} {value!r} is not a plain file name inside the session folder; "
            "sidecars may only refer to files next to them. Re-prepare the session"
        ) from None


def _check_meta(meta: Any, meta_path: Path) -> dict[str, Any]:
    """The parsed sidecar, if it has every required field with the right JSON type."""
    if not isinstance(meta, dict):
        raise DatasetFormatError(
            f"{meta_path} is corrupt: expected a JSON object, got {type(meta).__name__}"
        )
    fmt = meta.get("format")
    if fmt not in READABLE_FORMATS:
        raise DatasetFormatError(
            f"{meta_path}: unsupported format {fmt!r} (expected one of "
            f"{', '.join(READABLE_FORMATS)}); re-prepare the data with this version of ephys"
        )
    problems = [
        f"{key} ({'missing' if key not in meta else type(meta[key]).__name__})"
        for key, kind in _REQUIRED.items()
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool)
    ]
    if problems:
        raise DatasetFormatError(
            f"{meta_path} is corrupt: missing or mistyped fields {', '.join(problems)}"
        )
    if fmt == FORMAT:
        stored = meta.get("meta_sha256")
        if stored != meta_digest(meta):
            raise DatasetFormatError(
                f"{meta_path} does not match its digest (meta_sha256): the sidecar was edited "
                "or damaged after it was written. Restore it, or re-prepare the session"
            )
    try:
        check_session_name(meta["name"])
    except SessionNameError as err:
        raise DatasetFormatError(f"{meta_path}: {err}") from None
    _check_file_name(meta["data_file"], meta_path, "data_file")
    labels = meta.get("labels")
    if labels:
        if not isinstance(labels, dict):
            raise DatasetFormatError(f"{meta_path} is corrupt: labels must be an object")
        _check_file_name(labels.get("file"), meta_path, "labels.file")
    _check_values(meta, meta_path)
    return meta


def _check_values(meta: dict[str, Any], meta_path: Path) -> None:
    """The sidecar's numbers and per-channel fields are consistent with each other."""
    n = meta["n_channels"]
    problems = []
    if not meta["sfreq"] > 0:
        problems.append(f"sfreq {meta['sfreq']} is not positive")
    if n < 0 or meta["n_times"] < 0:
        problems.append("n_channels and n_times must not be negative")
    try:
        np.dtype(meta["dtype"])
    except TypeError:
        problems.append(f"dtype {meta['dtype']!r} is not a numpy type")
    for key in ("ch_names", "ch_types", "units"):
        value = meta.get(key)
        if key == "units" and value is None:
            continue
        if not isinstance(value, list) or len(value) != n:
            problems.append(f"{key} must list one entry per channel ({n})")
        elif not all(isinstance(v, str) for v in value):
            problems.append(f"{key} must hold strings")
    for key, width in (("pos_2d", 2), ("pos_3d", 3), ("ori_3d", 3), ("coil_x_3d", 3)):
        value = meta.get(key)
        if value is None:
            continue
        try:
            shape = np.asarray(value, dtype=np.float64).shape
        except (TypeError, ValueError):
            shape = None
        if shape != (n, width):
            problems.append(f"{key} must be {n} rows of {width} numbers")
    if not isinstance(meta.get("transforms", []), list):
        problems.append("transforms must be a list")
    if problems:
        raise DatasetFormatError(f"{meta_path} is corrupt: {'; '.join(problems)}")


@dataclass(frozen=True)
class Session:
    """A prepared session, opened lazily: arrays are memory-mapped on first access.

    The memory maps are cached per process and not pickled (DataLoader workers reopen them).

    Attributes
    ----------
    path
        The session folder.
    meta
        The parsed sidecar.
    """

    path: Path
    meta: Mapping[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Session:
        """Read and check the sidecar of the session in ``path`` (format, required fields,
        file references, and for ``ephys-session/2`` its digest)."""
        path = Path(path)
        meta_path = path / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetFormatError(f"{meta_path} is missing: not a prepared session") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetFormatError(f"{meta_path} is corrupt: {err}") from None
        except OSError as err:
            raise DatasetFormatError(f"{meta_path} cannot be read: {err.strerror}") from None
        return cls(path, _check_meta(meta, meta_path))

    @property
    def name(self) -> str:
        """Session name."""
        return str(self.meta["name"])

    @property
    def n_times(self) -> int:
        """Samples in the session."""
        return int(self.meta["n_times"])

    @property
    def sfreq(self) -> float:
        """Sampling frequency in Hz."""
        return float(self.meta["sfreq"])

    @property
    def digest(self) -> str:
        """The sidecar's digest (computed for ``ephys-session/1`` sessions, which lack it)."""
        return str(self.meta.get("meta_sha256") or meta_digest(self.meta))

    @property
    def non_finite(self) -> int | None:
        """Non-finite samples recorded when the session was written (``None``: not recorded,
        the session predates ``ephys-session/2``)."""
        value = self.meta.get("non_finite")
        return None if value is None else int(value)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "path", state["path"])
        object.__setattr__(self, "meta", state["meta"])

    def _load(self, file: str, shape: tuple[int, ...], dtype: str | None) -> np.ndarray:
        path = self.path / _check_file_name(file, self.path / "meta.json", "file")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise DatasetFormatError(f"{path} is missing") from None
        except (EOFError, OSError, ValueError) as err:  # empty, truncated, a folder, pickled
            reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
            raise DatasetFormatError(
                f"{path} is truncated or corrupt: {reason}; re-prepare the session"
            ) from None
        if tuple(array.shape) != shape or (dtype is not None and array.dtype.str != dtype):
            raise DatasetFormatError(
                f"{path} holds {array.dtype.str} {tuple(array.shape)}, but its sidecar says "
                f"{dtype} {shape}"
            )
        return array

    @cached_property
    def data(self) -> np.ndarray:
        """``(C, T)`` memory-mapped samples (read-only)."""
        shape = (int(self.meta["n_channels"]), self.n_times)
        return self._load(self.meta["data_file"], shape, self.meta["dtype"])

    @cached_property
    def labels(self) -> np.ndarray | None:
        """``(T,)`` int16 memory-mapped condition labels, or ``None``."""
        if not self.meta.get("labels"):
            return None
        return self._load(self.meta["labels"]["file"], (self.n_times,), np.dtype(np.int16).str)

    def verify(self) -> None:
        """Check the sidecar on disk against its digest and re-hash the data and labels
        against the sidecar (reads every byte)."""
        on_disk = Session.open(self.path)
        if on_disk.digest != self.digest:
            raise DatasetFormatError(f"{self.path / 'meta.json'} changed since it was opened")
        if _array_digest(self.data) != self.meta["data_sha256"]:
            raise DatasetFormatError(f"{self.path / self.meta['data_file']}: content hash mismatch")
        labels = self.meta.get("labels") or {}
        if labels.get("sha256") and _array_digest(self.labels) != labels["sha256"]:
            raise DatasetFormatError(f"{self.path / labels['file']}: content hash mismatch")


def iter_sessions(root: str | Path) -> Iterator[Session]:
    """Every complete session under ``root``, sorted by name (temporary folders ignored)."""
    base = Path(root) / SESSIONS
    if not base.is_dir():
        return
    for path in sorted(base.iterdir()):
        if path.is_dir() and not path.name.startswith("."):
            yield Session.open(path)


def _pipelines(sessions: list[Session]) -> list[dict[str, Any]]:
    """The distinct pipelines (by ``config_hash``) that prepared ``sessions``, with theirs."""
    groups: dict[str, dict[str, Any]] = {}
    for session in sessions:
        provenance = session.meta.get("provenance") or {}
        config_hash = provenance.get("config_hash")
        if not config_hash:
            continue
        group = groups.setdefault(
            config_hash,
            {"config_hash": config_hash, "pipeline": provenance.get("pipeline"), "sessions": []},
        )
        group["sessions"].append(session.name)
    return [groups[key] for key in sorted(groups)]


def write_manifest(root: Path, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild ``manifest.json`` from the session sidecars (atomically) and return it.

    Each session entry carries the sidecar's digest (``meta_sha256``), so the manifest covers
    every sidecar and, through them, every array. When sessions record the pipeline that made
    them, ``pipelines`` lists each distinct pipeline with its sessions and ``mixed`` says
    whether there is more than one.
    """
    root = Path(root)
    entries = []
    sessions = list(iter_sessions(root))
    total_samples, total_seconds = 0, 0.0
    for session in sessions:
        meta = session.meta
        entry = {
            key: meta.get(key)
            for key in (
                "name",
                "dataset",
                "subject",
                "session",
                "task",
                "run",
                "sfreq",
                "n_channels",
                "n_times",
                "dtype",
            )
        }
        entry["meta_sha256"] = session.digest
        entries.append(entry)
        total_samples += session.n_times
        total_seconds += session.n_times / session.sfreq if session.sfreq else 0.0
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "sessions": entries,
        "totals": {
            "sessions": len(entries),
            "samples": total_samples,
            "seconds": total_seconds,
            "hours": total_seconds / 3600,
        },
    }
    pipelines = _pipelines(sessions)
    if pipelines:
        manifest["pipelines"] = pipelines
        manifest["mixed"] = len(pipelines) > 1
    manifest.update(extra or {})
    root.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(root / "manifest.json")
    try:
        _dump_json(tmp, manifest)
        os.replace(tmp, root / "manifest.json")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of a prepared dataset, with a clear error if ``root`` is not one."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        if (Path(root) / SESSIONS).is_dir():
            raise DatasetFormatError(
                f"{root} has sessions but no manifest.json (interrupted run?); "
                "rerun `ephys preprocess` to finish it"
            )
        raise DatasetFormatError(f"{root} is not a prepared ephys dataset (no manifest.json)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetFormatError(f"{path} is corrupt: {err}") from None
    except OSError as err:
        raise DatasetFormatError(f"{path} cannot be read: {err.strerror}") from None
    if not isinstance(manifest, dict):
        raise DatasetFormatError(
            f"{path} is corrupt: expected a JSON object, got {type(manifest).__name__}"
        )
    if manifest.get("format") != MANIFEST_FORMAT:
        raise DatasetFormatError(f"{path}: unsupported format {manifest.get('format')!r}")
    sessions, totals = manifest.get("sessions"), manifest.get("totals")
    if (
        not isinstance(sessions, list)
        or not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in sessions)
        or not isinstance(totals, dict)
        or not all(isinstance(totals.get(k), int | float) for k in ("sessions", "samples", "hours"))
    ):
        raise DatasetFormatError(
            f"{path} is corrupt: expected `sessions` (a list of entries with a name) and "
            "`totals`; rerun `ephys preprocess` into the folder to rebuild it"
        )
    for entry in sessions:
        try:
            check_session_name(entry["name"])
        except SessionNameError as err:
            raise DatasetFormatError(f"{path}: {err}") from None
    return manifest


class PreparedDataset:
    """A prepared dataset root: its manifest and its sessions.

    Parameters
    ----------
    root
        The folder ``ephys preprocess`` wrote.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self._sessions: dict[str, Session] = {}

    @property
    def names(self) -> list[str]:
        """Session names, sorted."""
        return [entry["name"] for entry in self.manifest["sessions"]]

    def session(self, name: str) -> Session:
        """Open session ``name`` (cached), checking its sidecar against the manifest."""
        if name not in self._sessions:
            path = session_dir(self.root, name)
            if not path.is_dir():
                raise DatasetFormatError(f"{self.root}: session {name!r} is listed but missing")
            session = Session.open(path)
            entry = next((e for e in self.manifest["sessions"] if e["name"] == name), {})
            expected = entry.get("meta_sha256")
            if expected and expected != session.digest:
                raise DatasetFormatError(
                    f"{path / 'meta.json'} does not match the digest the manifest records for "
                    "it (edited, or rewritten by a run that did not finish); rerun the same "
                    f"`ephys preprocess` into {self.root} to rebuild the manifest"
                )
            if session.name != name:
                raise DatasetFormatError(
                    f"{path / 'meta.json'} names session {session.name!r}, but it lies in the "
                    f"folder of {name!r}; re-prepare it"
                )
            self._sessions[name] = session
        return self._sessions[name]

    def sessions(self) -> list[Session]:
        """All sessions, sorted by name."""
        return [self.session(name) for name in self.names]


# -- writing into a dataset folder: one run at a time, leftovers of killed runs removed -------
@contextlib.contextmanager
def folder_lock(root: str | Path) -> Iterator[bool]:
    """Hold the exclusive lock of dataset folder ``root`` (``<root>/.lock``) while writing.

    Yields whether the folder is locked (see :func:`ephys_core.files.exclusive_lock`).

    Raises
    ------
    FolderLockedError
        Another process holds the lock.
    """
    root = Path(root)
    with exclusive_lock(root / LOCK_FILE, str(root)) as locked:
        yield locked


def clean_leftovers(root: str | Path) -> list[str]:
    """Remove what killed runs left in dataset folder ``root``; returns the names removed.

    These are hidden session folders being written or replaced (``sessions/.<name>.tmp-*``,
    ``sessions/.<name>.old-*``) and manifests being written (``.manifest.json.tmp-*``). Call it
    only while holding :func:`folder_lock`: a concurrent run's temporary folders look the same.
    """
    root = Path(root)
    removed = [
        f"{SESSIONS}/{name}" for name in remove_leftovers(root / SESSIONS, tags=("tmp", "old"))
    ]
    removed += remove_leftovers(root, "manifest.json", tags=("tmp",))
    if removed:
        logger.info("%s: removed %d leftover(s) of unfinished runs", root, len(removed))
    return removed
