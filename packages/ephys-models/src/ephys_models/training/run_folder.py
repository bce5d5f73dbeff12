"""A run's folder, ``<out_dir>/<name>/``: what is in it, and the only ways ephys changes it.

Layout::

    <out_dir>/<name>/
      ephys-run.json        marks the folder as an ephys run (what --overwrite may replace)
      config.yaml           the resolved run configuration
      data_spec.json        the dataset's data_spec()
      checkpoints/          last.ckpt, best-step*.ckpt
      logs/ tensorboard/    metric logs, one version per attempt
      train_summary.json    written when training ends
      test_metrics.json     `ephys test`
      eval/                 `ephys eval` (report.md, summary.json, plots)
    <out_dir>/.<name>.lock  held while a training run writes the folder

Rules: ``--overwrite`` replaces only a folder marked as an ephys run, never the working
directory or a folder holding the run's own data, and only after the whole new configuration
has been checked; the replacement is one rename, so the folder never mixes old and new files.
Temporary files of killed runs (``.<name>.replaced-*`` beside the folder, ``.*.tmp-*`` among
the checkpoints) are removed by the next run, under the lock. Processes that Lightning launches
for the other ranks of a distributed run never change the folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ephys_core.files import is_inside, remove_leftovers, temporary_sibling

__all__ = ["RUN_FORMAT", "RUN_MARKER", "RunFolder", "is_launched_child"]

RUN_MARKER = "ephys-run.json"
RUN_FORMAT = "ephys-run/1"


def is_launched_child() -> bool:
    """Whether this process is one Lightning started for another rank of a distributed run.

    Lightning re-runs the command for local ranks > 0 with ``LOCAL_RANK`` set, and expects
    other nodes to be started with ``NODE_RANK``; only the first process may change files.
    """
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


class RunFolder:
    """The folder of run ``name`` in ``out_dir`` (which need not exist yet)."""

    def __init__(self, out_dir: str | Path, name: str) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.path = self.out_dir / name

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunFolder | None:
        """The run folder a checkpoint lies in (``<run>/checkpoints/x.ckpt``), if it does."""
        folder = Path(checkpoint).resolve().parent
        run = cls(folder.parent.parent, folder.parent.name)
        return run if folder.name == "checkpoints" and run.is_run() else None

    @property
    def checkpoints(self) -> Path:
        """Where checkpoints are written."""
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        """``checkpoints/last.ckpt``, written for resumption."""
        return self.checkpoints / "last.ckpt"

    @property
    def lock_file(self) -> Path:
        """The lock held while a run writes the folder (beside it, so it survives a replace)."""
        return self.out_dir / f".{self.name}.lock"

    def is_run(self) -> bool:
        """Whether the folder is an ephys run (marked, or laid out by an older version)."""
        if (self.path / RUN_MARKER).is_file():
            return True
        return (self.path / "config.yaml").is_file() and self.checkpoints.is_dir()

    def has_checkpoints(self) -> bool:
        """Whether any checkpoint has been written."""
        return self.checkpoints.is_dir() and any(self.checkpoints.glob("*.ckpt"))

    def overwrite_problems(self, data_roots: Iterable[str | Path]) -> list[str]:
        """Why ``--overwrite`` must not replace this folder (empty: it may)."""
        if not self.path.exists():
            return []
        shown = str(self.path)
        if not self.path.is_dir():
            return [f"--overwrite: {shown} is a file, not a run folder"]
        if Path.cwd().resolve().is_relative_to(self.path.resolve()):
            return [
                f"--overwrite: {shown} is the working directory or holds it; choose another "
                "name or out_dir"
            ]
        problems = [
            f"--overwrite: {shown} holds the run's own data ({root}); choose another name or "
            "out_dir"
            for root in data_roots
            if is_inside(root, self.path)
        ]
        if not self.is_run() and any(self.path.iterdir()):
            problems.append(
                f"--overwrite: {shown} is not an ephys run folder (it has no {RUN_MARKER}); "
                "--overwrite only replaces runs. Choose another name or out_dir, or remove it"
            )
        return problems

    def clean_leftovers(self) -> None:
        """Remove what killed runs left: replaced folders and partial checkpoint files."""
        remove_leftovers(self.out_dir, self.name, tags=("replaced",))
        remove_leftovers(self.checkpoints, tags=("tmp",))

    def replace(self) -> None:
        """Move the old run out of the way in one rename, then delete it."""
        if not self.path.exists():
            return
        old = temporary_sibling(self.path, "replaced")
        os.replace(self.path, old)
        shutil.rmtree(old, ignore_errors=True)

    def create(self) -> None:
        """Create the folder and mark it as an ephys run."""
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / RUN_MARKER
        if not marker.is_file():
            marker.write_text(
                json.dumps({"format": RUN_FORMAT, "name": self.name}) + "\n", encoding="utf-8"
            )
