"""A plain folder (or a single file) of recordings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from ephys_core.components import Component, ComponentConfig
from ephys_core.errors import ConfigError
from ephys_core.protocols import RecordingRef
from ephys_data.sources._naming import bids_entities, is_recording, safe_name, strip_suffix

__all__ = ["Folder"]


class Folder(Component):
    """Every recording MNE can read under a folder (or one file), found by extension.

    Session names are the paths relative to the folder with separators replaced (recordings
    that differ only by format, such as ``test.edf`` and ``test.bdf``, keep their extension),
    so they stay unique; subject, session, task and run are read from BIDS-style parts of the name
    (``sub-01_ses-2_task-rest``) when present. CTF ``.ds`` folders count as one recording.
    """

    class Config(ComponentConfig):
        root: Path = Field(description="Folder to search, or a single recording.")
        recursive: bool = Field(True, description="Search sub-folders too.")
        include: list[str] = Field(
            default_factory=list, description="Only paths matching one of these glob patterns."
        )
        exclude: list[str] = Field(
            default_factory=list, description="Skip paths matching any of these glob patterns."
        )
        dataset: str = Field("", description="Data-set label stored with every session.")

    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> Config:
        """A folder with two (empty) recordings when ``workdir`` is given."""
        if workdir is None:
            return cls.Config(root=Path("recordings"))
        root = Path(workdir) / "recordings"
        (root / "sub-01").mkdir(parents=True, exist_ok=True)
        (root / "sub-01" / "sub-01_task-rest_meg.fif").touch()
        (root / "sub-02_task-rest_meg.ds").mkdir(exist_ok=True)
        return cls.Config(root=root)

    def _candidates(self, root: Path) -> list[Path]:
        found: list[Path] = []
        stack = [root]
        while stack:
            folder = stack.pop()
            for path in sorted(folder.iterdir()):
                if is_recording(path):
                    found.append(path)
                elif path.is_dir() and self.config.recursive and not path.name.startswith("."):
                    stack.append(path)
        return sorted(found)

    def discover(self) -> Sequence[RecordingRef]:
        """The recordings, sorted by path."""
        root = self.config.root.expanduser()
        if not root.exists():
            raise ConfigError(f"source root {str(root)!r} does not exist")
        if is_recording(root):
            paths, base = [root], root.parent
        elif root.is_dir():
            paths, base = self._candidates(root), root
        else:
            raise ConfigError(f"{str(root)!r} is neither a folder nor a recording MNE can read")
        refs = []
        for path in paths:
            rel = path.relative_to(base).as_posix()
            if self.config.include and not any(path.match(p) for p in self.config.include):
                continue
            if any(path.match(p) for p in self.config.exclude):
                continue
            stem = strip_suffix(rel)
            ents = bids_entities(path.name)
            refs.append(
                RecordingRef(
                    path=path,
                    name=safe_name(stem.replace("/", "__")),
                    dataset=self.config.dataset,
                    subject=ents.get("sub"),
                    session=ents.get("ses"),
                    task=ents.get("task"),
                    run=ents.get("run"),
                )
            )
        return _unique(refs)


def _unique(refs: list[RecordingRef]) -> list[RecordingRef]:
    """Give recordings whose names collide a suffix from their file extension."""
    from collections import Counter
    from dataclasses import replace

    counts = Counter(ref.name for ref in refs)
    out = []
    for ref in refs:
        if counts[ref.name] > 1:
            suffix = ref.path.name[len(strip_suffix(ref.path.name)) :].lstrip(".")
            ref = replace(ref, name=safe_name(f"{ref.name}_{suffix.replace('.', '_')}"))
        out.append(ref)
    return out
