"""Session names and BIDS entities from file names."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["RECORDING_SUFFIXES", "bids_entities", "is_recording", "safe_name", "strip_suffix"]

#: File suffixes MNE reads as raw recordings (a CTF ``.ds`` is a folder).
RECORDING_SUFFIXES = (
    ".fif",
    ".fif.gz",
    ".ds",
    ".con",
    ".sqd",
    ".edf",
    ".bdf",
    ".gdf",
    ".vhdr",
    ".set",
    ".cnt",
    ".mff",
    ".nxe",
    ".eeg",
    ".snirf",
    ".lay",
    ".data",
    ".mef",
)
# files that look like recordings but are companions of another file
_COMPANIONS = (".eeg",)  # BrainVision data file next to its .vhdr

_ENTITY = re.compile(r"(sub|ses|task|run|acq|proc|split)-([A-Za-z0-9]+)")


def is_recording(path: Path) -> bool:
    """Whether ``path`` is a recording MNE can open (by name)."""
    name = path.name.lower()
    if name.endswith(".ds"):
        return path.is_dir()
    if not path.is_file():
        return False
    if name.endswith(_COMPANIONS) and path.with_suffix(".vhdr").exists():
        return False
    return name.endswith(RECORDING_SUFFIXES)


def bids_entities(name: str) -> dict[str, str]:
    """BIDS key-value entities found in a file name (``sub``, ``ses``, ``task``, ``run``...)."""
    return {key: value for key, value in _ENTITY.findall(name)}


def safe_name(text: str) -> str:
    """A file-system-safe session name."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")
    return cleaned or "session"


def strip_suffix(name: str) -> str:
    """``name`` without its recording suffix (``.fif.gz``, ``.ds``, ``.vhdr``, ...)."""
    lower = name.lower()
    for suffix in sorted(RECORDING_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name
