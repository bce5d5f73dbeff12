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

Every change of amplitude (normalisation, clipping, mu-law) is appended to ``transforms`` as a
record of :mod:`ephys_data.transforms`, so :func:`ephys_data.transforms.to_physical` maps any
prepared sample back to physical units (tesla, tesla/metre, volt, or source units).

Sensor geometry is per channel: a channel without a position (an all-zero or non-finite MNE
``loc``, as for EEG channels of a CTF file or MEG reference channels of KIT systems) has zero
rows in ``pos_3d``, ``ori_3d`` and ``coil_x_3d``, whatever the other channels have.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ephys_core.errors import EphysError
from ephys_data.transforms import check_transform

if TYPE_CHECKING:
    import mne

__all__ = [
    "PER_CHANNEL",
    "Recording",
    "RecordingError",
    "annotations_from_raw",
    "channel_has_position",
]

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
        ``(C, 3)`` sensor positions (metres, device coordinates) and unit coil normals (MNE
        ``loc[0:3]`` and ``loc[9:12]``); zero rows for channels without a position.
    coil_x_3d
        ``(C, 3)`` unit x axis of each channel's coil (MNE ``loc[3:6]``): for planar
        gradiometers the direction of the measured gradient, which is all that tells the two
        gradiometers of one MEGIN site apart. Zero rows where unknown.
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
    coil_x_3d: np.ndarray | None = None
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
        """A copy backed by an array (the MNE object, if any, is dropped).

        A stage that changes the channels must pass every per-channel field (types, units,
        positions, orientations; ``None`` where unknown) for the new channels.
        """
        rec = dataclasses.replace(self, raw=None, data=data, **changes)
        if rec.data is not None and rec.data.shape[0] != len(rec.ch_names):
            raise RecordingError(
                f"{self.name}: {rec.data.shape[0]} data rows for {len(rec.ch_names)} channels"
            )
        rec.check_channels()
        return rec

    def check_channels(self) -> None:
        """Raise a :class:`RecordingError` if a per-channel field has the wrong length."""
        n = len(self.ch_names)
        for field in PER_CHANNEL:
            value = getattr(self, field)
            if value is not None and len(value) != n:
                raise RecordingError(
                    f"{self.name}: {field} has {len(value)} entries for {n} channels; a stage "
                    f"that changes the channels must give the new {field} (or None)"
                )

    def with_transform(self, data: np.ndarray, transform: Mapping[str, Any]) -> Recording:
        """A copy with new samples and one more entry in ``transforms``.

        ``transform`` is a record of :mod:`ephys_data.transforms` (its kind must be known, so
        that :func:`~ephys_data.transforms.to_physical` can always undo it).
        """
        return self.with_data(data, transforms=(*self.transforms, check_transform(transform)))

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


#: Per-channel fields of :class:`Recording` (one entry or row per channel when set).
PER_CHANNEL = ("ch_types", "units", "pos_2d", "pos_3d", "ori_3d", "coil_x_3d")


def channel_has_position(pos_3d: Any) -> np.ndarray:
    """``(C,)`` bool: which rows of ``pos_3d`` are real positions (finite and not all zero).

    MNE marks a channel without a position with an all-zero (or NaN) ``loc``; no sensor sits
    exactly at the origin of the device or head frame, which lies inside the head.
    """
    pos = np.asarray(pos_3d, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[0] == 0:
        return np.zeros(pos.shape[0] if pos.ndim else 0, dtype=bool)
    finite = np.isfinite(pos).all(axis=1)
    return finite & (np.abs(np.where(np.isfinite(pos), pos, 0.0)).sum(axis=1) > 0)


def _unit_rows(vectors: np.ndarray, keep: np.ndarray) -> np.ndarray | None:
    """``vectors`` normalised row by row, zero where not ``keep``; ``None`` if all zero."""
    vectors = np.where(np.isfinite(vectors), vectors, 0.0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    out[~keep] = 0.0
    return out if np.abs(out).sum() > 0 else None


def _metadata_from_raw(raw: mne.io.BaseRaw) -> dict[str, Any]:
    """Channel metadata of an MNE object in the form :class:`Recording` stores it.

    Positions are decided per channel: channels without one get zero rows, so one channel
    lacking a position never makes the others position-less.
    """
    info = raw.info
    types = tuple(raw.get_channel_types())
    locs = np.array([ch["loc"][:12] for ch in info["chs"]], dtype=np.float64).reshape(-1, 12)
    has_pos = channel_has_position(locs[:, :3])
    pos_3d = np.where(has_pos[:, None] & np.isfinite(locs[:, :3]), locs[:, :3], 0.0)
    any_pos = bool(has_pos.any())
    return {
        "sfreq": float(info["sfreq"]),
        "ch_names": tuple(info["ch_names"]),
        "ch_types": types,
        "units": tuple(_UNITS.get(int(ch["unit"]), str(ch["unit"])) for ch in info["chs"]),
        "pos_3d": pos_3d if any_pos else None,
        "ori_3d": _unit_rows(locs[:, 9:12], has_pos) if any_pos else None,
        "coil_x_3d": _unit_rows(locs[:, 3:6], has_pos) if any_pos else None,
        "pos_2d": layout_2d(raw) if any_pos else None,
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

    Channels without a position (stimulus, misc, or any channel with an all-zero ``loc``) get
    the centre ``(0.5, 0.5)``.
    """
    import mne

    positions = np.full((len(raw.ch_names), 2), np.nan)
    types = raw.get_channel_types()
    located = channel_has_position([ch["loc"][:3] for ch in raw.info["chs"]])
    for ch_type in sorted(set(types)):
        picks = [i for i, t in enumerate(types) if t == ch_type and located[i]]
        if not picks or ch_type not in {"mag", "grad", "eeg", "seeg", "ecog", "ref_meg", "dbk"}:
            continue
        try:
            xy = mne.channels.layout._find_topomap_coords(
                raw.info, picks, ignore_overlap=True, to_sphere=True
            )
        except Exception:  # noqa: BLE001 - positions are a convenience: fall back to the centre
            continue
        positions[picks] = xy
    # scale by the channels that have a position only, then put the others at the centre
    finite = np.isfinite(positions).all(axis=1)
    if not finite.any():
        return None
    lo, hi = positions[finite].min(axis=0), positions[finite].max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    positions[finite] = (positions[finite] - lo) / span
    positions[~finite] = 0.5
    return positions
