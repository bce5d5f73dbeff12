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

import errno
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ephys_core.errors import EphysError
from ephys_core.logging import get_logger

__all__ = [
    "FolderLockedError",
    "atomic_write_bytes",
    "exclusive_lock",
    "folder_name_problem",
    "is_inside",
    "remove_leftovers",
    "temporary_sibling",
]


logger = get_logger(__name__)

_FORBIDDEN = re.compile(r"[/\\:\x00-\x1f\x7f]")


class FolderLockedError(EphysError):
    """Another process holds the lock of a folder this command wants to write."""


def folder_name_problem(value: object) -> str | None:
    """Why ``value`` cannot name one folder (or file) inside another, or ``None`` if it can.

    A name must stay inside its parent on every system: a non-empty string of at most 255
    bytes, no path separators (``/``, ``\\``, ``:``) or control characters, not ``.`` or
    ``..``, not hidden (a leading dot is reserved for ephys's temporary and lock files) and no
    surrounding spaces.
    """
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not a name"
    if not value:
        return "it is empty"
    if value in {".", ".."}:
        return f"{value!r} would name the folder itself or its parent"
    if _FORBIDDEN.search(value):
        return "it contains a path separator (/, \\ or :) or a control character"
    if value.startswith("."):
        return "it starts with '.' (hidden names are reserved for temporary files)"
    if value != value.strip():
        return "it starts or ends with spaces"
    if len(value.encode("utf-8", "surrogatepass")) > 255:
        return "it is longer than 255 bytes"
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


def remove_leftovers(
    folder: Path, name: str | None = None, tags: tuple[str, ...] = ("tmp",)
) -> list[str]:
    """Remove ``.<name>.<tag>-<8 hex digits>`` files and folders a killed process left.

    Parameters
    ----------
    folder
        Where to look (not recursively).
    name
        Only leftovers of this file or folder name; any name by default.
    tags
        The tags :func:`temporary_sibling` was called with.

    Returns
    -------
    list of str
        The names removed. Call it only while holding the folder's :func:`exclusive_lock`:
        a running process's temporary files look the same.
    """
    import shutil

    if not folder.is_dir():
        return []
    stem = re.escape(name) if name is not None else ".+"
    pattern = re.compile(rf"\.{stem}\.(?:{'|'.join(map(re.escape, tags))})-[0-9a-f]{{8}}")
    removed = []
    for leftover in sorted(folder.iterdir()):
        if not pattern.fullmatch(leftover.name):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover.name)
    return removed


@contextmanager
def exclusive_lock(lock_file: Path, what: str) -> Iterator[bool]:
    """Hold an exclusive advisory lock on ``lock_file`` for the ``with`` block.

    Parameters
    ----------
    lock_file
        The lock file (created if needed; it stays, empty, after the block). The operating
        system releases the lock when the process ends, however it ends.
    what
        What the lock protects, for messages (``"the prepared dataset prepared/"``).

    Yields
    ------
    bool
        Whether the lock is held: ``False`` (after a warning) where the file system or the
        system cannot lock (some network file systems; Windows, which has no ``fcntl``).

    Raises
    ------
    FolderLockedError
        At once (no waiting) if another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        logger.warning("cannot lock %s on this system; make sure no other run writes it", what)
        yield False
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "ab") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderLockedError(
                    f"{what} is being written by another run (it holds {lock_file}); wait for "
                    "it to finish, or write somewhere else"
                ) from None
            logger.warning(
                "cannot lock %s (%s); make sure no other run writes %s", lock_file, err, what
            )
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
