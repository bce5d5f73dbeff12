"""BIDS data sets (any, through mne-bids) and the named public data sets built on them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from ephys_core.components import Component, ComponentConfig
from ephys_core.errors import ConfigError, MissingDependencyError
from ephys_core.protocols import RecordingRef
from ephys_data.sources._naming import safe_name

__all__ = ["BIDS", "CamCAN", "MOUS", "Omega"]


class BIDS(Component):
    """Recordings of a BIDS data set, found with mne-bids and filtered by entities.

    Session names keep the BIDS entities (``sub-A2002_ses-01_task-rest_run-1``); split FIF
    files count once (MNE reads the following splits automatically).
    """

    class Config(ComponentConfig):
        root: Path = Field(description="BIDS root folder (holding dataset_description.json).")
        datatypes: list[str] = Field(
            default_factory=lambda: ["meg", "eeg"], description="BIDS datatypes to include."
        )
        extensions: list[str] | None = Field(
            None, description="File extensions to include (e.g. ['.ds']); all recordings if unset."
        )
        subjects: list[str] | None = Field(None, description="Only these subjects (without sub-).")
        sessions: list[str] | None = Field(None, description="Only these sessions.")
        tasks: list[str] | None = Field(None, description="Only these tasks.")
        exclude_tasks: list[str] = Field(
            default_factory=lambda: ["noise", "emptyroom"],
            description="Tasks to skip (empty-room and noise recordings by default).",
        )
        runs: list[str] | None = Field(None, description="Only these runs.")
        dataset: str = Field("", description="Data-set label stored with every session.")

    #: extensions of raw recordings in BIDS (``.eeg``/``.vmrk`` are BrainVision companions)
    RAW_EXTENSIONS = (".fif", ".ds", ".con", ".sqd", ".edf", ".bdf", ".vhdr", ".set", ".gz")

    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> Config:
        """A tiny BIDS tree of empty placeholder recordings when ``workdir`` is given."""
        if workdir is None:
            return cls.Config(root=Path("bids"))
        return cls.Config(root=_example_tree(Path(workdir), cls._EXAMPLE))

    _EXAMPLE = (
        "sub-01/ses-01/meg/sub-01_ses-01_task-rest_meg.fif",
        "sub-02/ses-01/meg/sub-02_ses-01_task-rest_meg.fif",
        "sub-02/ses-01/meg/sub-02_ses-01_task-noise_meg.fif",
    )

    def discover(self) -> Sequence[RecordingRef]:
        """The matching recordings, sorted by session name."""
        try:
            import mne_bids
        except ImportError:
            raise MissingDependencyError(
                "BIDS discovery", "mne-bids", 'pip install "ephys-data[bids]"'
            ) from None
        cfg = self.config
        if not (cfg.root / "dataset_description.json").is_file() and not any(
            cfg.root.glob("sub-*")
        ):
            raise ConfigError(f"{str(cfg.root)!r} is not a BIDS data set (no sub-* folders)")
        paths = mne_bids.find_matching_paths(
            cfg.root,
            subjects=cfg.subjects,
            sessions=cfg.sessions,
            tasks=cfg.tasks,
            runs=cfg.runs,
            datatypes=cfg.datatypes,
            extensions=cfg.extensions,
            ignore_json=True,
        )
        refs: dict[str, RecordingRef] = {}
        for bids_path in paths:
            fpath = Path(bids_path.fpath)
            if bids_path.suffix not in (None, "meg", "eeg", "ieeg"):
                continue
            if not str(fpath).lower().endswith(self.RAW_EXTENSIONS):
                continue
            if bids_path.task in cfg.exclude_tasks:
                continue
            if bids_path.split not in (None, "01"):
                continue  # MNE follows split files from the first one
            entities = [
                ("sub", bids_path.subject),
                ("ses", bids_path.session),
                ("task", bids_path.task),
                ("acq", bids_path.acquisition),
                ("run", bids_path.run),
            ]
            name = safe_name("_".join(f"{k}-{v}" for k, v in entities if v))
            refs[name] = RecordingRef(
                path=fpath,
                name=name,
                dataset=cfg.dataset,
                subject=bids_path.subject,
                session=bids_path.session,
                task=bids_path.task,
                run=bids_path.run,
                metadata=self._metadata(bids_path.task),
            )
        return [refs[name] for name in sorted(refs)]

    def _metadata(self, task: str | None) -> dict[str, str]:
        return {}


def _example_tree(workdir: Path, files: Sequence[str]) -> Path:
    root = workdir / "bids"
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "example", "BIDSVersion": "1.9.0"}), encoding="utf-8"
    )
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".ds"):
            path.mkdir(exist_ok=True)
        else:
            path.touch()
    return root


class Omega(BIDS):
    """The OMEGA resting-state data set (BIDS, CTF 275-channel ``.ds`` recordings).

    Resting-state tasks only; empty-room noise recordings are skipped.
    """

    class Config(BIDS.Config):
        datatypes: list[str] = Field(default_factory=lambda: ["meg"], description="Datatypes.")
        extensions: list[str] | None = Field([".ds"], description="CTF recordings.")
        tasks: list[str] | None = Field(None, description="Only these tasks (all rest tasks).")
        dataset: str = Field("omega", description="Data-set label.")

    _EXAMPLE = (
        "sub-0001/ses-01/meg/sub-0001_ses-01_task-rest_run-01_meg.ds",
        "sub-0002/ses-01/meg/sub-0002_ses-01_task-rest_run-01_meg.ds",
        "sub-emptyroom/ses-01/meg/sub-emptyroom_ses-01_task-noise_run-01_meg.ds",
    )

    def discover(self) -> Sequence[RecordingRef]:
        """Resting-state recordings (task names containing ``rest``)."""
        return [ref for ref in super().discover() if "rest" in (ref.task or "")]


class MOUS(BIDS):
    """The MOUS data set (Schoffelen et al., 2019): BIDS, CTF, auditory/visual/rest tasks.

    Each recording's metadata names the condition-label preset of its task
    (``mous_auditory``, ``mous_visual`` or ``rest``) for the ``condition_labels`` stage.
    """

    class Config(BIDS.Config):
        datatypes: list[str] = Field(default_factory=lambda: ["meg"], description="Datatypes.")
        extensions: list[str] | None = Field([".ds"], description="CTF recordings.")
        tasks: list[str] | None = Field(
            ["auditory", "visual", "rest"], description="Tasks to include."
        )
        dataset: str = Field("mous", description="Data-set label.")

    _EXAMPLE = (
        "sub-A2002/meg/sub-A2002_task-auditory_meg.ds",
        "sub-V1001/meg/sub-V1001_task-visual_meg.ds",
        "sub-A2002/meg/sub-A2002_task-rest_meg.ds",
    )

    def _metadata(self, task: str | None) -> dict[str, str]:
        preset = {"auditory": "mous_auditory", "visual": "mous_visual"}.get(task or "", "rest")
        return {"condition_preset": preset}


class CamCAN(BIDS):
    """The Cam-CAN data set (BIDS, MEGIN/Elekta 306-channel ``.fif`` recordings)."""

    class Config(BIDS.Config):
        datatypes: list[str] = Field(default_factory=lambda: ["meg"], description="Datatypes.")
        extensions: list[str] | None = Field([".fif"], description="MEGIN recordings.")
        tasks: list[str] | None = Field(
            ["rest", "task", "smt", "passive"], description="Tasks to include."
        )
        dataset: str = Field("camcan", description="Data-set label.")

    _EXAMPLE = (
        "sub-CC110033/ses-rest/meg/sub-CC110033_ses-rest_task-rest_meg.fif",
        "sub-CC110037/ses-smt/meg/sub-CC110037_ses-smt_task-smt_meg.fif",
    )
