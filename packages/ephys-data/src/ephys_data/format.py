"""The prepared-dataset format: memory-mappable arrays plus JSON sidecars, written atomically.

Layout of a prepared dataset root::

    <root>/
      manifest.json                 # sessions, lengths, totals, pipeline, versions
      sessions/<name>/data.npy      # (C, T) float32 signal, or the smallest uint for codes
      sessions/<name>/labels.npy    # (T,) int16 condition labels (optional)
      sessions/<name>/meta.json     # the sidecar (see SessionMeta)

Nothing is pickled. A session folder appears only once complete: it is written under a hidden
temporary name and renamed into place, so an interrupted run leaves nothing a reader accepts.
Outputs are deterministic (no timestamps), so a resumed run produces the same bytes as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.errors import EphysError
from ephys_data.recording import Recording

__all__ = [
    "FORMAT",
    "DatasetFormatError",
    "PreparedDataset",
    "Session",
    "iter_sessions",
    "read_manifest",
    "session_dir",
    "write_manifest",
    "write_session",
]

FORMAT = "ephys-session/1"
MANIFEST_FORMAT = "ephys-dataset/1"
SESSIONS = "sessions"


class DatasetFormatError(EphysError):
    """A prepared dataset or one of its files is missing, truncated or inconsistent."""


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


def _save_array(path: Path, array: np.ndarray) -> str:
    """Write ``array`` as .npy, fsync it, and return the SHA-256 of its bytes."""
    array = np.ascontiguousarray(array)
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(memoryview(array).cast("B")).hexdigest()


def session_dir(root: Path, name: str) -> Path:
    """Folder of session ``name`` under dataset ``root``."""
    return Path(root) / SESSIONS / name


def _storage_array(recording: Recording) -> np.ndarray:
    data = recording.get_data()
    if np.issubdtype(data.dtype, np.integer):
        return data  # codes are stored as produced (smallest unsigned type)
    return data.astype(np.float32, copy=False)


def write_session(root: Path, recording: Recording, provenance: Mapping[str, Any]) -> Path:
    """Write ``recording`` as session ``recording.name`` under ``root``, atomically.

    An existing session of that name is replaced; readers never see a half-written one.

    Returns
    -------
    Path
        The session folder.
    """
    final = session_dir(root, recording.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{recording.name}.tmp-{uuid.uuid4().hex[:8]}"
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
            _save_array(tmp / "labels.npy", np.asarray(recording.labels, dtype=np.int16))
            labels = {
                "file": "labels.npy",
                "names": {str(k): v for k, v in recording.label_names.items()},
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
            "ch_names": list(recording.ch_names),
            "ch_types": list(recording.ch_types),
            "units": list(recording.units),
            "pos_2d": recording.pos_2d,
            "pos_3d": recording.pos_3d,
            "ori_3d": recording.ori_3d,
            "bads": list(recording.bads),
            "labels": labels,
            "annotations": [dict(a) for a in recording.annotations],
            "transforms": [dict(t) for t in recording.transforms],
            "provenance": {**recording.provenance, **provenance},
        }
        _dump_json(tmp / "meta.json", meta)
        old = None
        if final.exists():
            old = final.parent / f".{recording.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


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
        """Read and check the sidecar of the session in ``path``."""
        path = Path(path)
        meta_path = path / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetFormatError(f"{meta_path} is missing: not a prepared session") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetFormatError(f"{meta_path} is corrupt: {err}") from None
        if meta.get("format") != FORMAT:
            raise DatasetFormatError(
                f"{meta_path}: unsupported format {meta.get('format')!r} (expected {FORMAT!r})"
            )
        return cls(path, meta)

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

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "path", state["path"])
        object.__setattr__(self, "meta", state["meta"])

    def _load(self, file: str, shape: tuple[int, ...], dtype: str | None) -> np.ndarray:
        path = self.path / file
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise DatasetFormatError(f"{path} is missing") from None
        except ValueError as err:
            raise DatasetFormatError(f"{path} is truncated or corrupt: {err}") from None
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
        """Recompute the data hash and compare it with the sidecar (reads the whole file)."""
        data = np.ascontiguousarray(self.data)
        digest = hashlib.sha256(memoryview(data).cast("B")).hexdigest()
        if digest != self.meta["data_sha256"]:
            raise DatasetFormatError(f"{self.path / self.meta['data_file']}: content hash mismatch")


def iter_sessions(root: str | Path) -> Iterator[Session]:
    """Every complete session under ``root``, sorted by name (temporary folders ignored)."""
    base = Path(root) / SESSIONS
    if not base.is_dir():
        return
    for path in sorted(base.iterdir()):
        if path.is_dir() and not path.name.startswith("."):
            yield Session.open(path)


def write_manifest(root: Path, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild ``manifest.json`` from the session sidecars (atomically) and return it."""
    sessions = []
    total_samples, total_seconds = 0, 0.0
    for session in iter_sessions(root):
        meta = session.meta
        sessions.append(
            {
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
        )
        total_samples += session.n_times
        total_seconds += session.n_times / session.sfreq
    manifest = {
        "format": MANIFEST_FORMAT,
        "sessions": sessions,
        "totals": {
            "sessions": len(sessions),
            "samples": total_samples,
            "seconds": total_seconds,
            "hours": total_seconds / 3600,
        },
        **(extra or {}),
    }
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".manifest.json.tmp-{uuid.uuid4().hex[:8]}"
    _dump_json(tmp, manifest)
    os.replace(tmp, root / "manifest.json")
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
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"{path} is corrupt: {err}") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise DatasetFormatError(f"{path}: unsupported format {manifest.get('format')!r}")
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
        """Open session ``name`` (cached)."""
        if name not in self._sessions:
            path = session_dir(self.root, name)
            if not path.is_dir():
                raise DatasetFormatError(f"{self.root}: session {name!r} is listed but missing")
            self._sessions[name] = Session.open(path)
        return self._sessions[name]

    def sessions(self) -> list[Session]:
        """All sessions, sorted by name."""
        return [self.session(name) for name in self.names]
