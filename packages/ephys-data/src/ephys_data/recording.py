"""The object preprocessing stages pass along: one recording and everything known about it.

A :class:`Recording` is in one of three states:

*unloaded*
    only ``source`` (a file or CTF ``.ds`` folder) is set; the ``read`` stage loads it.
*MNE-backed*
    ``raw`` holds an :class:`mne.io.BaseRaw`; channel metadata (names, types, positions, units,
    bad channels, sampling frequency) is derived from ``raw.info``. MNE stages (filters,
    resampling, Maxwell filtering, ICA, OSL-ephys chains, source projection) work here.
*array-backed*
    ``data`` holds a ``(C, T)`` numpy array and the metadata is stored on the object. Scaling
    stages (normalisation, clipping, mu-law) work here; it is also what gets written to disk.

Recordings are treated as immutable: stages return new objects (``replace``, ``with_raw``,
``with_data``) and never modify their input.

Every invertible change of amplitude (normalisation, clipping, mu-law) is appended to
``transforms`` with its parameters, so :func:`to_physical` maps any prepared sample back to
physical units (tesla, tesla/metre, volt, or source units).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ephys_core.errors import EphysError

if TYPE_CHECKING:
    import mne

__all__ = ["Recording", "RecordingError", "annotations_from_raw", "to_physical"]

# FIFF unit codes (mne.io.constants.FIFF.FIFF_UNIT_*) to readable names
_UNITS = {112: "T", 201: "T/m", 107: "V", 0: "", -1: "", 1: "", 109: "K", 202: "T/m"}


class RecordingError(EphysError):
    """A recording cannot be processed (wrong state, unusable content); names the session."""


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
    """One recording, with metadata, state and provenance.

    Attributes
    ----------
    name
        Unique session name (``sub-01_ses-1_task-rest``).
    source
        The original file or folder, if any.
    raw
        The MNE object when MNE-backed.
    data
        ``(C, T)`` array when array-backed.
    sfreq
        Sampling frequency in Hz.
    ch_names, ch_types
        Channel names and MNE channel types (``mag``, ``grad``, ``eeg``, ``parcel``, ...).
    units
        Physical unit of each channel before any transform (``T``, ``T/m``, ``V``, ``dSPM``).
    pos_2d
        ``(C, 2)`` layout positions scaled to ``[0, 1]``, or ``None``.
    pos_3d, ori_3d
        ``(C, 3)`` sensor positions (metres, device coordinates) and unit orientations.
    bads
        Names of bad channels.
    labels
        ``(T,)`` int16 condition label per sample (0 = none), kept beside the signal.
    label_names
        Label value -> description.
    annotations
        Bad or event segments as dicts with ``onset`` and ``duration`` (s) and ``description``.
    transforms
        Amplitude transforms applied so far, in order, with the parameters to invert them.
    provenance
        Source file hash, stages applied, versions.
    subject, session, task, dataset, run
        Identity, where known.
    """

    name: str
    source: Path | None = None
    raw: Any = None
    data: np.ndarray | None = None
    sfreq: float = 0.0
    ch_names: tuple[str, ...] = ()
    ch_types: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    pos_2d: np.ndarray | None = None
    pos_3d: np.ndarray | None = None
    ori_3d: np.ndarray | None = None
    bads: tuple[str, ...] = ()
    labels: np.ndarray | None = None
    label_names: Mapping[int, str] = dataclasses.field(default_factory=dict)
    annotations: tuple[Mapping[str, Any], ...] = ()
    transforms: tuple[Mapping[str, Any], ...] = ()
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    subject: str | None = None
    session: str | None = None
    task: str | None = None
    dataset: str = ""
    run: str | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def unloaded(cls, source: str | Path, name: str | None = None, **identity: Any) -> Recording:
        """A recording that only knows its file; the ``read`` stage loads it."""
        source = Path(source)
        return cls(name=name or source.stem.removesuffix(".ds"), source=source, **identity)

    @classmethod
    def from_raw(cls, raw: mne.io.BaseRaw, name: str, **fields: Any) -> Recording:
        """An MNE-backed recording; metadata is read from ``raw.info`` (and annotations from
        ``raw.annotations``) unless given in ``fields``."""
        return cls(name=name, raw=raw, **{**_metadata_from_raw(raw), **fields})

    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        sfreq: float,
        ch_names: Sequence[str],
        ch_types: Sequence[str] | str = "misc",
        name: str = "array",
        **fields: Any,
    ) -> Recording:
        """An array-backed recording from a ``(C, T)`` array."""
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[0] != len(ch_names):
            raise RecordingError(
                f"{name}: data must be (n_channels, n_times) with one row per channel name; "
                f"got shape {data.shape} for {len(ch_names)} names"
            )
        types = [ch_types] * len(ch_names) if isinstance(ch_types, str) else list(ch_types)
        fields.setdefault("units", ("",) * len(ch_names))
        return cls(
            name=name,
            data=data,
            sfreq=float(sfreq),
            ch_names=tuple(ch_names),
            ch_types=tuple(types),
            **fields,
        )

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``"unloaded"``, ``"mne"`` or ``"array"``."""
        if self.raw is not None:
            return "mne"
        return "array" if self.data is not None else "unloaded"

    @property
    def n_channels(self) -> int:
        """Number of channels (0 when unloaded)."""
        return len(self.ch_names)

    @property
    def n_times(self) -> int:
        """Number of samples (0 when unloaded)."""
        if self.raw is not None:
            return int(self.raw.n_times)
        return 0 if self.data is None else int(self.data.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_times / self.sfreq if self.sfreq else 0.0

    def require(self, state: str, stage: str) -> None:
        """Raise a clear error if the recording is not in ``state`` for ``stage``."""
        if self.state == state:
            return
        advice = {
            "mne": "MNE stages must come before `source_projection`, `normalize`, `clip` and "
            "`mulaw` (which turn the recording into an array), and after `read`",
            "array": "this stage needs a loaded recording; put `read` first",
        }.get(state, "")
        raise RecordingError(
            f"{self.name}: stage {stage!r} needs a recording in state {state!r}, but it is "
            f"{self.state!r}. {advice}"
        )

    def get_data(self) -> np.ndarray:
        """The ``(C, T)`` samples (from ``raw`` without copying it, or ``data``)."""
        if self.raw is not None:
            return self.raw.get_data()
        if self.data is None:
            raise RecordingError(f"{self.name}: recording is not loaded; put `read` first")
        return self.data

    # -- derivation (stages use these; the input is never modified) ------------------------------
    def replace(self, **changes: Any) -> Recording:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def with_raw(self, raw: mne.io.BaseRaw, **changes: Any) -> Recording:
        """A copy backed by another MNE object, with metadata (and annotations) re-read from it;
        ``changes`` take precedence."""
        return dataclasses.replace(
            self, raw=raw, data=None, **{**_metadata_from_raw(raw), **changes}
        )

    def with_data(self, data: np.ndarray, **changes: Any) -> Recording:
        """A copy backed by an array (the MNE object, if any, is dropped)."""
        rec = dataclasses.replace(self, raw=None, data=data, **changes)
        if rec.data is not None and rec.data.shape[0] != len(rec.ch_names):
            raise RecordingError(
                f"{self.name}: {rec.data.shape[0]} data rows for {len(rec.ch_names)} channels"
            )
        return rec

    def with_transform(self, data: np.ndarray, transform: Mapping[str, Any]) -> Recording:
        """A copy with new samples and one more entry in ``transforms``."""
        return self.with_data(data, transforms=(*self.transforms, dict(transform)))

    def with_provenance(self, **items: Any) -> Recording:
        """A copy with entries added to ``provenance``."""
        return dataclasses.replace(self, provenance={**self.provenance, **items})

    def fingerprint(self) -> str:
        """A digest of the samples and metadata (of the file, when unloaded)."""
        h = hashlib.sha256()
        h.update(repr((self.name, self.sfreq, self.ch_names, self.bads, self.transforms)).encode())
        if self.state == "unloaded":
            if self.source is not None and self.source.exists():
                st = self.source.stat()
                h.update(f"{self.source}:{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            h.update(np.ascontiguousarray(self.get_data()).tobytes())
        if self.labels is not None:
            h.update(self.labels.tobytes())
        return h.hexdigest()


def _metadata_from_raw(raw: mne.io.BaseRaw) -> dict[str, Any]:
    """Channel metadata of an MNE object in the form :class:`Recording` stores it."""
    info = raw.info
    types = tuple(raw.get_channel_types())
    locs = np.array([ch["loc"][:12] for ch in info["chs"]], dtype=np.float64)
    pos_3d = locs[:, :3].copy()
    ori = locs[:, 9:12].copy()
    norms = np.linalg.norm(ori, axis=1, keepdims=True)
    ori = np.divide(ori, norms, out=np.zeros_like(ori), where=norms > 0)
    has_pos = bool(np.isfinite(pos_3d).all() and np.abs(pos_3d).sum() > 0)
    return {
        "sfreq": float(info["sfreq"]),
        "ch_names": tuple(info["ch_names"]),
        "ch_types": types,
        "units": tuple(_UNITS.get(int(ch["unit"]), str(ch["unit"])) for ch in info["chs"]),
        "pos_3d": pos_3d if has_pos else None,
        "ori_3d": ori if has_pos and np.abs(ori).sum() > 0 else None,
        "pos_2d": layout_2d(raw) if has_pos else None,
        "bads": tuple(info["bads"]),
        "annotations": annotations_from_raw(raw),
    }


def annotations_from_raw(raw: mne.io.BaseRaw) -> tuple[dict[str, Any], ...]:
    """``raw.annotations`` as :attr:`Recording.annotations` entries.

    Onsets are in seconds from the first sample of ``raw`` (MNE counts them from the
    measurement start, which differs when the recording does not begin at sample 0).
    """
    annotations = raw.annotations
    if len(annotations) == 0:
        return ()
    # the same conversion as MNE's own, with or without a measurement date
    onsets = np.asarray(annotations.onset, dtype=np.float64) - float(raw.first_time)
    return tuple(
        {
            "onset": round(float(onset), 9),
            "duration": round(float(duration), 9),
            "description": str(description),
        }
        for onset, duration, description in zip(
            onsets, annotations.duration, annotations.description, strict=True
        )
    )


def layout_2d(raw: mne.io.BaseRaw) -> np.ndarray | None:
    """2-D positions of every channel of ``raw`` scaled to ``[0, 1]`` (topomap projection).

    Channels without a position (stimulus, misc) get the centre ``(0.5, 0.5)``.
    """
    import mne

    positions = np.full((len(raw.ch_names), 2), 0.5)
    types = raw.get_channel_types()
    for ch_type in sorted(set(types)):
        picks = [i for i, t in enumerate(types) if t == ch_type]
        if ch_type not in {"mag", "grad", "eeg", "seeg", "ecog", "ref_meg", "dbk"}:
            continue
        try:
            xy = mne.channels.layout._find_topomap_coords(
                raw.info, picks, ignore_overlap=True, to_sphere=True
            )
        except Exception:  # noqa: BLE001 - positions are a convenience: fall back to the centre
            continue
        positions[picks] = xy
    finite = np.isfinite(positions).all(axis=1)
    if not finite.any():
        return None
    lo, hi = positions[finite].min(axis=0), positions[finite].max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    positions[finite] = (positions[finite] - lo) / span
    positions[~finite] = 0.5
    return positions


def to_physical(data: np.ndarray, transforms: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Undo amplitude ``transforms`` (last first), returning float64 data in physical units.

    ``data`` is ``(C, T)`` (or ``(..., C, T)``) prepared samples: codes for mu-law data,
    normalised values otherwise. Clipping cannot be undone; clipped samples stay at the bound.
    """
    from ephys_data.stages.scaling import invert_transform

    out = np.asarray(data)
    for transform in reversed(list(transforms)):
        out = invert_transform(out, transform)
    return np.asarray(out, dtype=np.float64)
