"""Reading recordings from disk: the stage every pipeline starts with."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages._mne import DATA_TYPES, add_annotations, add_step, mne_quiet
from ephys_data.stages.base import Stage

if TYPE_CHECKING:
    import mne

__all__ = ["Read", "file_digest", "stim_code"]

logger = get_logger(__name__)

ChannelType = Literal[
    "meg",
    "mag",
    "grad",
    "ref_meg",
    "eeg",
    "eog",
    "ecg",
    "emg",
    "seeg",
    "ecog",
    "dbs",
    "stim",
    "misc",
    "resp",
    "bio",
    "fnirs",
]

#: Formats named in error messages (``mne.io.read_raw`` reads a few more).
_FORMATS = (
    "FIF (.fif, .fif.gz), CTF (.ds folder), KIT/Ricoh (.con, .sqd), BTi/4D (c,rfDC), EDF (.edf), "
    "BDF (.bdf), GDF (.gdf), BrainVision (.vhdr), EEGLAB (.set), EGI (.mff), Neuroscan (.cnt), "
    "Curry, Nihon Kohden, NIRx, SNIRF, Persyst, EyeLink"
)

_STIM_DESCRIPTION = re.compile(r"(?:^|/)\D*(\d+)\s*$")


def stim_code(description: str) -> int | None:
    """The event code an annotation description carries, if any.

    ``read`` names stimulus-channel events ``"<channel>/<code>"`` (``"UPPT001/15"``); other
    readers use ``"Stimulus/S 15"`` (BrainVision) or plain numbers. The trailing integer is the
    code; descriptions without one (``"BAD_flat"``) have none.
    """
    match = _STIM_DESCRIPTION.search(description)
    return int(match.group(1)) if match else None


def file_digest(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """SHA-256 and size in bytes of a file, or of every file of a folder (a CTF ``.ds``).

    A folder's digest covers each file's path relative to the folder and its content, in
    sorted order, so renaming or editing any file changes it.
    """
    h = hashlib.sha256()
    size = 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            h.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(chunk):
                h.update(block)
                size += len(block)
    return h.hexdigest(), size


class Read(Stage):
    """Load a recording from any format MNE reads, keeping the channels asked for.

    Reads FIF, CTF ``.ds`` folders, KIT ``.con``/``.sqd``, BTi/4D, EDF/BDF/GDF, BrainVision,
    EEGLAB and the other formats of :func:`mne.io.read_raw`, fully into memory. In order it
    then applies CTF gradient compensation (which needs the reference channels, so it comes
    first), crops, turns stimulus-channel events into annotations named
    ``"<channel>/<code>"`` (so that condition labels survive dropping the stimulus
    channels), optionally retypes channels (``channel_types``), and keeps the channel types in
    ``picks``: MEG and EEG by default, without the
    MEG reference channels unless ``ref_meg`` is listed. Data channels that are exactly
    constant (dead, disconnected, all zero) are marked bad and logged; a recording whose data
    channels are all constant fails. The source's SHA-256 and size are recorded in the
    provenance.
    """

    class Config(ComponentConfig):
        picks: list[ChannelType] = Field(
            default_factory=lambda: ["meg", "eeg"],
            description="Channel types to keep (`meg` = `mag` + `grad`). Reference MEG "
            "channels are dropped unless `ref_meg` is listed; types the file lacks are ignored.",
        )
        compensation_grade: Literal[0, 1, 2, 3] | None = Field(
            3,
            description="CTF gradient compensation grade to apply when the file has "
            "compensation data (3 = third-order gradiometer); null keeps the file's grade.",
        )
        channel_types: dict[str, ChannelType] = Field(
            default_factory=dict,
            description="Set the type of channels by name before picking, e.g. {EEG057: ecg, "
            "EEG058: eog} for MOUS (`meg` is not a type here; use mag or grad).",
        )
        tmin: float = Field(0.0, ge=0, description="Start of the kept span, in seconds.")
        tmax: float | None = Field(
            None, description="End of the kept span in seconds; null keeps the rest."
        )
        stim_to_annotations: bool = Field(
            True,
            description="Turn events on stimulus channels into annotations "
            "`<channel>/<code>` before the channels are dropped.",
        )
        stim_channels: list[str] | None = Field(
            None, description="Stimulus channels to read events from; null = every one."
        )
        stim_min_duration: float = Field(
            0.0,
            ge=0,
            description="Shortest change of a stimulus channel counted as an event "
            "(seconds; MOUS used 0.005).",
        )
        checksum: bool = Field(
            True, description="Record the SHA-256 of the source (reads every byte once)."
        )
        allow_maxshield: bool = Field(
            False,
            description="Read MEGIN FIF files recorded with active shielding (MaxShield); "
            "follow with `maxwell`.",
        )

        @model_validator(mode="after")
        def _span(self) -> Read.Config:
            if "meg" in self.channel_types.values():
                raise ValueError("channel_types: use mag or grad, not meg")
            if self.tmax is not None and self.tmax <= self.tmin:
                raise ValueError(f"tmax ({self.tmax}) must be greater than tmin ({self.tmin})")
            if not self.picks:
                raise ValueError("picks must name at least one channel type")
            return self

    requires: ClassVar[str] = "unloaded"
    preserves_duration: ClassVar[bool] = False

    def apply(self, recording: Recording) -> Recording:
        cfg = self.config
        source = recording.source
        if source is None:
            raise RecordingError(f"{recording.name}: recording has no source file to read")
        source = Path(source)
        if not source.exists():
            raise RecordingError(
                f"{recording.name}: recording {source} does not exist; check the path (a CTF "
                "recording is the whole .ds folder)"
            )
        with mne_quiet(recording.name, logger):
            raw = _read(source, recording.name, cfg.allow_maxshield)
            details: dict[str, Any] = {
                "source": str(source),
                "reader": type(raw).__name__,
                "n_times_in_file": int(raw.n_times),
            }
            details["compensation"] = _compensate(raw, cfg.compensation_grade, recording.name)
            if cfg.channel_types:
                _set_types(raw, cfg.channel_types, recording.name)
            _crop(raw, cfg.tmin, cfg.tmax, recording.name)
            if cfg.stim_to_annotations:
                details["stim_events"] = _stim_to_annotations(
                    raw, cfg.stim_channels, cfg.stim_min_duration, recording.name
                )
            details["dropped_types"] = _pick(raw, cfg.picks, recording.name, source)
            details["flat_channels"] = _mark_flat(raw, recording.name, source)
            out = recording.with_raw(raw)
        if recording.sfreq and recording.sfreq != out.sfreq:
            logger.warning(
                "%s: %s is sampled at %g Hz, not %g Hz as expected",
                recording.name,
                source,
                out.sfreq,
                recording.sfreq,
            )
        provenance: dict[str, Any] = {"source": str(source)}
        if cfg.checksum:
            digest, size = file_digest(source)
            provenance.update(source_sha256=digest, source_bytes=size)
        out = out.with_provenance(**provenance)
        logger.debug(
            "%s: read %d channels, %.1f s at %g Hz from %s",
            recording.name,
            out.n_channels,
            out.duration,
            out.sfreq,
            source,
        )
        return add_step(out, "read", **details)

    def output_sfreq(self, sfreq: float) -> float:
        """The file's sampling frequency: ``sfreq`` when the unloaded recording knows it
        (a data source may record it), 0 when it is unknown until the file is read."""
        return sfreq

    def example_input(self, workdir: Path) -> Recording:
        """A 10 s, 32-channel EEG FIF file with a stimulus channel, unloaded."""
        import mne

        from ephys_data.examples import example_raw

        raw = example_raw()
        stim = np.zeros((1, raw.n_times))
        for onset, code in ((200, 1), (900, 2), (1500, 1)):
            stim[0, onset : onset + 10] = code
        raw.add_channels(
            [
                mne.io.RawArray(
                    stim, mne.create_info(["STI 014"], raw.info["sfreq"], "stim"), verbose="error"
                )
            ],
            force_update_info=True,
        )
        path = Path(workdir) / "example_raw.fif"
        path.parent.mkdir(parents=True, exist_ok=True)
        raw.save(path, overwrite=True, verbose="error")
        return Recording.unloaded(path, name="example").replace(sfreq=raw.info["sfreq"])


def _read(source: Path, name: str, allow_maxshield: bool) -> mne.io.BaseRaw:
    """Read ``source`` preloaded, turning every failure into a :class:`RecordingError`."""
    import mne

    try:
        if source.suffix.lower() == ".meg4":  # a CTF data file: read its .ds folder
            return mne.io.read_raw_ctf(source.parent, preload=True)
        if _is_bti(source):
            folder = source.parent
            head_shape = folder / "hs_file"
            return mne.io.read_raw_bti(
                source,
                config_fname=folder / "config",
                head_shape_fname=head_shape if head_shape.exists() else None,
                preload=True,
            )
        kwargs: dict[str, Any] = {}
        if source.name.lower().endswith((".fif", ".fif.gz")):
            kwargs["allow_maxshield"] = allow_maxshield
        return mne.io.read_raw(source, preload=True, **kwargs)
    except Exception as err:  # every reader fails differently; the user needs the file name
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, ValueError) and "Unsupported file type" in str(err):
            raise RecordingError(
                f"{name}: cannot read {source}: unknown recording format "
                f"{''.join(source.suffixes) or '(no extension)'}. Readable formats: {_FORMATS}"
            ) from err
        if "maxshield" in str(err).lower():
            raise RecordingError(
                f"{name}: {source} was recorded with MaxShield; set `allow_maxshield: true` "
                "in `read` and add a `maxwell` stage"
            ) from err
        raise RecordingError(
            f"{name}: cannot read {source}: the file is truncated, corrupt or not what its "
            f"extension says ({type(err).__name__}: {message}). Re-copy or re-export it, or "
            "leave it out"
        ) from err


def _is_bti(source: Path) -> bool:
    """A 4D/BTi data file (``c,rfDC`` and the like) next to its ``config`` file."""
    return (
        source.is_file()
        and source.name.startswith(("c,rf", "e,rf"))
        and (source.parent / "config").exists()
    )


def _compensate(raw: mne.io.BaseRaw, grade: int | None, name: str) -> dict[str, int] | None:
    """Apply CTF gradient compensation ``grade`` if the file has compensation data."""
    if grade is None or not raw.info["comps"]:
        return None
    current = int(raw.compensation_grade or 0)
    if current != grade:
        try:
            raw.apply_gradient_compensation(grade)
        except (RuntimeError, ValueError) as err:
            raise RecordingError(
                f"{name}: cannot apply CTF compensation grade {grade} (the file is at grade "
                f"{current}): {err}. Set `compensation_grade` to a grade the file offers or null"
            ) from err
    return {"from": current, "to": int(grade)}


def _set_types(raw: mne.io.BaseRaw, types: dict[str, str], name: str) -> None:
    missing = [ch for ch in types if ch not in raw.ch_names]
    if missing:
        raise RecordingError(
            f"{name}: channel_types names channels the recording lacks: {', '.join(missing)}"
        )
    raw.set_channel_types(dict(types), on_unit_change="ignore")


def _crop(raw: mne.io.BaseRaw, tmin: float, tmax: float | None, name: str) -> None:
    if tmin == 0 and tmax is None:
        return
    duration = raw.times[-1]
    if tmin >= duration:
        raise RecordingError(
            f"{name}: cannot crop from {tmin} s, the recording lasts {duration:.3f} s"
        )
    raw.crop(tmin=tmin, tmax=min(tmax, duration) if tmax is not None else None)


def _stim_to_annotations(
    raw: mne.io.BaseRaw, channels: list[str] | None, min_duration: float, name: str
) -> dict[str, int]:
    """Add one annotation ``"<channel>/<code>"`` per event of each stimulus channel."""
    import mne

    stim = [raw.ch_names[i] for i in mne.pick_types(raw.info, meg=False, stim=True)]
    if channels is not None:
        missing = [ch for ch in channels if ch not in raw.ch_names]
        if missing:
            raise RecordingError(
                f"{name}: stimulus channel(s) {', '.join(missing)} not in the recording; "
                f"stimulus channels present: {', '.join(stim) or 'none'}"
            )
        stim = list(channels)
    counts: dict[str, int] = {}
    for channel in stim:
        try:
            events = mne.find_events(
                raw,
                stim_channel=channel,
                shortest_event=1,
                min_duration=min_duration,
                consecutive=True,
                initial_event=True,
                verbose=False,
            )
        except ValueError as err:
            logger.warning("%s: no events read from stimulus channel %s: %s", name, channel, err)
            continue
        if len(events) == 0:
            continue
        onsets = (events[:, 0] - raw.first_samp) / raw.info["sfreq"]
        add_annotations(
            raw, onsets, np.zeros(len(events)), [f"{channel}/{int(code)}" for code in events[:, 2]]
        )
        counts[channel] = len(events)
    return counts


def _pick(raw: mne.io.BaseRaw, picks: list[str], name: str, source: Path) -> list[str]:
    """Keep the channel types in ``picks``; returns the types dropped."""
    wanted = {t for p in picks for t in (("mag", "grad") if p == "meg" else (p,))}
    present = raw.get_channel_types()
    keep = [i for i, t in enumerate(present) if t in wanted]
    if not keep:
        raise RecordingError(
            f"{name}: {source} has no channels of the types {', '.join(picks)} (it has "
            f"{', '.join(sorted(set(present)))}); change `picks` in `read`"
        )
    dropped = sorted({t for t in present if t not in wanted})
    if len(keep) < len(present):
        raw.pick(keep)
    return dropped


#: Channel types checked for constant data (brain signals and MEG reference channels).
_FLAT_CHECKED = (*DATA_TYPES, "ref_meg")


def _mark_flat(raw: mne.io.BaseRaw, name: str, source: Path) -> list[str]:
    """Mark the exactly constant data channels of ``raw`` bad; returns their names.

    Raises
    ------
    RecordingError
        Every data channel (every checked one when there are only reference channels) is
        constant: the recording carries no signal.
    """
    types = raw.get_channel_types()
    checked = [i for i, t in enumerate(types) if t in _FLAT_CHECKED]
    if not checked or not raw.n_times:
        return []
    flat = []
    for block in range(0, len(checked), 64):  # a few channels at a time: no copy of it all
        picks = checked[block : block + 64]
        data = raw.get_data(picks=picks)
        flat.extend(i for i, row in zip(picks, data, strict=True) if row.min() == row.max())
    if not flat:
        return []
    names = [raw.ch_names[i] for i in flat]
    data_channels = [i for i in checked if types[i] != "ref_meg"] or checked
    if set(data_channels) <= set(flat):
        raise RecordingError(
            f"{name}: {source} is flat: all {len(data_channels)} data channels are constant "
            "(no signal was recorded, or it was exported without data); check the file, or "
            "leave it out"
        )
    logger.warning(
        "%s: %d constant (flat) channel(s) marked bad: %s",
        name,
        len(names),
        ", ".join(names[:10]) + (", ..." if len(names) > 10 else ""),
    )
    raw.info["bads"] = sorted(set(raw.info["bads"]) | set(names), key=raw.ch_names.index)
    return names
