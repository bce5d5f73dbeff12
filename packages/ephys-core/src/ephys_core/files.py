"""File-system rules every ephys package keeps: names that stay inside their folder, one writer
per folder, and files that appear whole or not at all.

Commands write only inside the folders a user names. These helpers make that hold: a name
taken from a configuration or a file is checked by :func:`folder_name_problem` before it is
joined to a path, :func:`exclusive_lock` keeps two processes from writing one folder at once,
and :func:`atomic_write_bytes` writes through a temporary file in the destination folder, so
a killed process leaves the old file or the new one, never half of one (temporary files are
named ``.<name>.tmp-*`` so that the next run can recognise and remove them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ephys_core.errors import EphysError

__all__ = [
    "FolderLockedError",
    "atomic_write_bytes",
    "exclusive_lock",
    "folder_name_problem",
    "is_inside",
    "remove_leftovers",
    "temporary_sibling",
]


class FolderLockedError(EphysError):
    """Another process holds the lock of a folder this command wants to write."""


def folder_name_problem(value: str) -> str | None:
    """Why ``value`` cannot name one folder (or file) inside another, or ``None`` if it can.

    A name must stay inside its parent: no path separators, not ``.`` or ``..``, not hidden
    (a leading dot is reserved for ephys's temporary and lock files), not empty, no
    surrounding spaces and no control characters.
    """
    if not value:
        return "must not be empty"
    if value != value.strip():
        return "must not start or end with spaces"
    if "/" in value or "\\" in value:
        return "must be a single name, without / or \\"
    if value in {".", ".."}:
        return f"{value!r} would name the folder itself or its parent"
    if value.startswith("."):
        return "must not start with a dot (hidden names are reserved for temporary files)"
    if any(ord(c) < 32 for c in value):
        return "must not contain control characters"
    return None


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (symbolic links resolved)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """A unique hidden name next to ``path``: ``.<name>.<tag>-<random>``."""
    return path.parent / f".{path.name}.{tag}-{uuid.uuid4().hex[:8]}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path, name: str = "*", tags: tuple[str, ...] = ("tmp",)) -> int:
    """Remove ``.<name>.<tag>-*`` files and folders a killed process left in ``folder``.

    Call it only while holding the folder's :func:`exclusive_lock`, so that no running
    process still owns them. Returns how many were removed.
    """
    import shutil

    if not folder.is_dir():
        return 0
    removed = 0
    for tag in tags:
        for leftover in folder.glob(f".{name}.{tag}-*"):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def exclusive_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` for the ``with`` block.

    Parameters
    ----------
    lock_file
        The lock file (created if needed; it stays, empty, after the block).
    what
        What the lock protects, for the error message (``"the prepared dataset prepared/"``).

    Raises
    ------
    FolderLockedError
        At once (no waiting) if another process holds the lock.

    Notes
    -----
    Uses ``fcntl.flock``: local file systems honour it; some network file systems do not, and
    on systems without ``fcntl`` (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise FolderLockedError(
                f"another ephys process{f' ({holder})' if holder else ''} is writing {what}; "
                f"wait for it to finish or stop it (lock: {lock_file})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
