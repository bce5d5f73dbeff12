"""Bad channels and bad segments: detection, rejection of unusable sessions, repair."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError, annotations_from_raw
from ephys_data.stages._mne import (
    add_annotations,
    add_step,
    import_optional,
    mne_quiet,
    require_channels,
    types_present,
)
from ephys_data.stages.base import Stage

if TYPE_CHECKING:
    import mne

__all__ = ["BadChannels", "BadSegments", "robust_bad_channels"]

logger = get_logger(__name__)

#: Smallest spread (log10 units) used for z-scores: with z_threshold 5 a channel must be at least
#: 10 ** 0.75 = 5.6 times larger or smaller than the median to be flagged, even when the other
#: channels are nearly identical (simulations, homogeneous sensor arrays).
_MIN_LOG_SPREAD = 0.15


def robust_bad_channels(
    data: np.ndarray,
    sfreq: float,
    *,
    z_threshold: float = 5.0,
    window_seconds: float | None = 10.0,
    min_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Flag channels whose amplitude is an outlier among channels of the same type.

    For each window of ``window_seconds`` (the whole recording if null or longer), every
    channel's standard deviation is compared with the others on a log scale with a robust
    z-score, ``(log10 sd - median) / (1.4826 * MAD)``. A channel is bad when
    ``|z| > z_threshold`` (noisy or nearly flat) or it is exactly flat in at least
    ``min_fraction`` of the windows.

    Parameters
    ----------
    data
        ``(C, T)`` samples of channels of one type.

    Returns
    -------
    bad, fraction
        ``(C,)`` booleans, and the fraction of windows in which each channel was an outlier.
    """
    n_channels, n_times = data.shape
    size = n_times if window_seconds is None else max(2, int(round(window_seconds * sfreq)))
    n_windows = max(1, n_times // size)
    flagged = np.zeros((n_windows, n_channels), dtype=bool)
    for w in range(n_windows):
        stop = n_times if w == n_windows - 1 else (w + 1) * size
        sd = data[:, w * size : stop].std(axis=1)
        with np.errstate(divide="ignore"):
            log_sd = np.log10(sd)
        finite = np.isfinite(log_sd)
        if finite.sum() < 3:  # almost everything flat: every channel is suspect
            flagged[w] = True
            continue
        center = np.median(log_sd[finite])
        spread = max(1.4826 * np.median(np.abs(log_sd[finite] - center)), _MIN_LOG_SPREAD)
        with np.errstate(invalid="ignore"):
            z = (log_sd - center) / spread
        flagged[w] = ~finite | (np.abs(z) > z_threshold)
    fraction = flagged.mean(axis=0)
    return fraction >= min_fraction, fraction


class BadChannels(Stage):
    """Detect bad channels, reject unusable sessions, and zero, interpolate or drop the bad ones.

    Detection runs per channel type (``mag``, ``grad`` and ``eeg`` separately): ``robust``
    flags channels whose amplitude is an outlier on a log scale (robust z-scores of per-window
    standard deviations; catches noisy, jumping and flat channels), ``osl`` uses OSL-ephys's
    generalised-ESD detector (needs ``ephys-data[osl]``), ``both`` takes the union. Channels
    already marked bad in the file count too. When more than ``max_bad_fraction`` (or
    ``max_bad_channels``) of the examined channels are bad the session is rejected with an
    error. The bad channel names are kept in ``Recording.bads`` (``mark``, ``zero``) and
    always in the provenance.
    """

    class Config(ComponentConfig):
        method: Literal["robust", "osl", "both"] = Field(
            "robust",
            description="`robust` (z-scores of log amplitude), `osl` (OSL-ephys "
            "GESD test) or `both` (union).",
        )
        ch_types: list[Literal["mag", "grad", "eeg", "seeg", "ecog"]] = Field(
            default_factory=lambda: ["mag", "grad", "eeg"],
            description="Channel types examined, each separately (absent types are skipped).",
        )
        z_threshold: float = Field(
            5.0, gt=0, description="Robust z-score beyond which a channel is an outlier."
        )
        window_seconds: float | None = Field(
            10.0, gt=0, description="Window for the robust detector; null = whole recording."
        )
        min_fraction: float = Field(
            0.5, gt=0, le=1, description="Fraction of windows a channel must be an outlier in."
        )
        significance_level: float = Field(
            0.05, gt=0, lt=1, description="Significance level of OSL-ephys's GESD test."
        )
        action: Literal["mark", "zero", "interpolate", "drop"] = Field(
            "zero",
            description="`mark` (only list them), `zero` (set to 0, keep listed), "
            "`interpolate` (spherical splines / MEG field mapping) or `drop`.",
        )
        interpolation: Literal["accurate", "fast"] = Field(
            "accurate",
            description="MEG field-mapping precision of `interpolate` (`fast` "
            "uses fewer coil integration points).",
        )
        max_bad_fraction: float | None = Field(
            0.25,
            gt=0,
            le=1,
            description="Reject the session when more than this fraction of examined "
            "channels is bad; null = no limit.",
        )
        max_bad_channels: int | None = Field(
            None,
            ge=0,
            description="Reject the session when more than this many channels are bad "
            "(the previous generation used 25); null = no limit.",
        )

        @model_validator(mode="after")
        def _types(self) -> BadChannels.Config:
            if not self.ch_types:
                raise ValueError("ch_types must list at least one channel type")
            return self

    def apply(self, recording: Recording) -> Recording:
        cfg = self.config
        raw = recording.raw
        types = types_present(raw, cfg.ch_types)
        examined = [i for i, t in enumerate(raw.get_channel_types()) if t in types]
        require_channels(
            recording, examined, f"channels of type {', '.join(cfg.ch_types)}", "bad_channels"
        )
        detected: dict[str, list[str]] = {}
        if cfg.method in ("robust", "both"):
            detected["robust"] = self._robust(raw, types)
        if cfg.method in ("osl", "both"):
            detected["osl"] = _osl_bad_channels(raw, types, cfg.significance_level, recording.name)
        found = {name for names in detected.values() for name in names}
        bads = [ch for ch in raw.ch_names if ch in found or ch in raw.info["bads"]]
        n_examined = len(examined)
        n_bad = sum(raw.ch_names.index(ch) in examined for ch in bads)
        self._check_limits(recording, bads, n_bad, n_examined)
        details: dict[str, Any] = {
            "method": cfg.method,
            "action": cfg.action,
            "bads": bads,
            "from_file": list(raw.info["bads"]),
            "detected": detected,
            "n_examined": n_examined,
        }
        if bads:
            logger.info(
                "%s: %d bad channel(s): %s (%s)",
                recording.name,
                len(bads),
                ", ".join(bads),
                cfg.action,
            )
        with mne_quiet(recording.name, logger):
            out = self._act(recording, bads)
        out = out.with_provenance(bad_channels=bads)
        return add_step(out, "bad_channels", **details)

    def _robust(self, raw: mne.io.BaseRaw, types: list[str]) -> list[str]:
        cfg = self.config
        names: list[str] = []
        ch_types = raw.get_channel_types()
        for ch_type in types:
            picks = [i for i, t in enumerate(ch_types) if t == ch_type]
            if len(picks) < 3:
                continue
            bad, _ = robust_bad_channels(
                raw.get_data(picks=picks),
                raw.info["sfreq"],
                z_threshold=cfg.z_threshold,
                window_seconds=cfg.window_seconds,
                min_fraction=cfg.min_fraction,
            )
            names.extend(raw.ch_names[picks[i]] for i in np.flatnonzero(bad))
        return names

    def _check_limits(
        self, recording: Recording, bads: list[str], n_bad: int, n_examined: int
    ) -> None:
        cfg = self.config
        too_many = (cfg.max_bad_channels is not None and n_bad > cfg.max_bad_channels) or (
            cfg.max_bad_fraction is not None and n_bad > cfg.max_bad_fraction * n_examined
        )
        if too_many:
            shown = ", ".join(bads[:20]) + (", ..." if len(bads) > 20 else "")
            raise RecordingError(
                f"{recording.name}: session rejected, {n_bad} of {n_examined} channels are bad "
                f"({shown}); limits max_bad_fraction={cfg.max_bad_fraction}, "
                f"max_bad_channels={cfg.max_bad_channels}. Inspect the recording, or raise "
                "the limits of `bad_channels`"
            )

    def _act(self, recording: Recording, bads: list[str]) -> Recording:
        action = self.config.action
        raw = recording.raw.copy()
        raw.info["bads"] = list(bads)
        if not bads:
            return recording.with_raw(raw)
        if action == "zero":
            raw.apply_function(
                _zero_spans, picks=list(bads), channel_wise=False, spans=[(0, raw.n_times)]
            )
        elif action == "drop":
            raw.drop_channels(bads)
        elif action == "interpolate":
            _interpolate(raw, recording.name, self.config.interpolation)
        return recording.with_raw(raw)


def _interpolate(raw: mne.io.BaseRaw, name: str, mode: str = "accurate") -> None:
    """Interpolate ``raw.info["bads"]`` in place (MEG: field mapping, EEG: splines)."""
    bad_idx = [raw.ch_names.index(ch) for ch in raw.info["bads"]]
    locs = np.array([raw.info["chs"][i]["loc"][:3] for i in bad_idx])
    if not np.isfinite(locs).all() or (np.abs(locs).sum(axis=1) == 0).any():
        raise RecordingError(
            f"{name}: cannot interpolate bad channels without sensor positions (set a montage "
            "for EEG); use action `zero` or `drop` in `bad_channels`"
        )
    n_dig = len(raw.info["dig"] or [])
    origin: Any = "auto" if n_dig >= 4 else (0.0, 0.0, 0.04)
    try:
        raw.interpolate_bads(reset_bads=True, origin=origin, mode=mode)
    except (RuntimeError, ValueError) as err:
        raise RecordingError(
            f"{name}: interpolating bad channels {raw.info['bads']} failed: {err}; use action "
            "`zero` or `drop` in `bad_channels`"
        ) from err


def _osl_bad_channels(raw: mne.io.BaseRaw, types: list[str], alpha: float, name: str) -> list[str]:
    """Channels OSL-ephys's GESD detector flags, per type."""
    wrappers = import_optional(
        "osl_ephys.preprocessing.osl_wrappers",
        "bad-channel detection with method 'osl'",
        "osl-ephys",
        'pip install "ephys-data[osl]"',
    )
    probe = raw.copy()
    before = set(probe.info["bads"])
    with mne_quiet(name, logger):
        for ch_type in types:
            if ch_type not in ("mag", "grad", "eeg"):
                continue
            probe = wrappers.bad_channels(
                probe, picks=ch_type, ref_meg=False, significance_level=alpha
            )
    return [ch for ch in probe.info["bads"] if ch not in before]


class BadSegments(Stage):
    """Annotate bad time segments (jumps, flat spans, muscle bursts), optionally zeroing them.

    Uses :func:`mne.preprocessing.annotate_amplitude`: a span is ``BAD_peak`` where
    consecutive samples jump by at least ``peak`` and ``BAD_flat`` where they change by at
    most ``flat`` (per channel type, in the data's units: T, T/m, V), for ``min_duration``
    seconds or more; channels bad for over ``bad_percent`` % of the time are marked bad.
    With ``muscle``, :func:`mne.preprocessing.annotate_muscle_zscore` adds ``BAD_muscle``
    (needs a sampling frequency above twice the upper muscle band edge, so run it before
    `resample`). Annotations are kept in ``Recording.annotations`` and the session's
    metadata; with ``zero`` the samples of every ``BAD`` segment are set to 0.
    """

    class Config(ComponentConfig):
        peak: float | dict[str, float] | None = Field(
            None,
            description="Sample-to-sample jump (per channel type, e.g. {mag: 1e-11, "
            "eeg: 1e-4}) at or above which a span is bad; null = no jump detection.",
        )
        flat: float | dict[str, float] | None = Field(
            0.0,
            description="Sample-to-sample change at or below which a span is flat "
            "(0 = exactly constant); null = no flat detection.",
        )
        min_duration: float = Field(0.005, ge=0, description="Shortest span annotated, in seconds.")
        bad_percent: float = Field(
            5.0,
            ge=0,
            le=100,
            description="Channels bad for more than this % of the time become bad channels.",
        )
        mark_bad_channels: bool = Field(
            True, description="Add the channels found by `bad_percent` to the bad channels."
        )
        muscle: bool = Field(False, description="Also annotate muscle artefacts (z-score).")
        muscle_threshold: float = Field(4.0, gt=0, description="Muscle z-score threshold.")
        muscle_filter_freq: tuple[float, float] = Field(
            (110.0, 140.0), description="Muscle band (Hz) whose envelope is z-scored."
        )
        muscle_min_length_good: float = Field(
            0.1,
            ge=0,
            description="Good gaps shorter than this (s) between muscle spans are annotated too.",
        )
        zero: bool = Field(False, description="Set the samples of every BAD segment to 0.")

    def apply(self, recording: Recording) -> Recording:
        import mne

        cfg = self.config
        raw = recording.raw.copy()
        details: dict[str, Any] = {}
        types = types_present(raw)
        require_channels(recording, types, "data channels", "bad_segments")
        with mne_quiet(recording.name, logger):
            if cfg.peak is not None or cfg.flat is not None:
                annot, bad_chs = mne.preprocessing.annotate_amplitude(
                    raw,
                    peak=_per_type(cfg.peak, types),
                    flat=_per_type(cfg.flat, types),
                    bad_percent=cfg.bad_percent,
                    min_duration=cfg.min_duration,
                    picks=types,
                )
                _append(raw, annot)
                details["amplitude_bad_channels"] = list(bad_chs)
                if cfg.mark_bad_channels:
                    raw.info["bads"] = list(dict.fromkeys([*raw.info["bads"], *bad_chs]))
            if cfg.muscle:
                details["muscle_seconds"] = self._muscle(raw, recording.name)
            bad = _bad_spans(raw)
            if cfg.zero and bad:
                raw.apply_function(_zero_spans, picks=types, channel_wise=False, spans=bad)
            out = recording.with_raw(raw)
        n_bad = sum(stop - start for start, stop in bad)
        details.update(
            n_segments=len(bad),
            bad_seconds=n_bad / raw.info["sfreq"],
            bad_fraction=n_bad / max(raw.n_times, 1),
            zeroed=bool(cfg.zero and bad),
        )
        return add_step(out, "bad_segments", **details)

    def _muscle(self, raw: mne.io.BaseRaw, name: str) -> float:
        import mne

        cfg = self.config
        low, high = cfg.muscle_filter_freq
        if high >= raw.info["sfreq"] / 2:
            raise RecordingError(
                f"{name}: muscle detection filters {low}-{high} Hz, which needs a sampling "
                f"frequency above {2 * high} Hz (this recording: {raw.info['sfreq']} Hz); "
                "run `bad_segments` before `resample` or lower `muscle_filter_freq`"
            )
        ch_type = next((t for t in ("mag", "grad", "eeg") if t in raw.get_channel_types()), None)
        if ch_type is None:
            raise RecordingError(f"{name}: muscle detection needs MEG or EEG channels")
        annot, _ = mne.preprocessing.annotate_muscle_zscore(
            raw,
            threshold=cfg.muscle_threshold,
            ch_type=ch_type,
            min_length_good=cfg.muscle_min_length_good,
            filter_freq=(low, high),
        )
        _append(raw, annot)
        return float(np.sum(annot.duration))


def _per_type(value: float | dict[str, float] | None, types: list[str]) -> Any:
    """A threshold for the channel types present (dict entries for absent types dropped)."""
    if isinstance(value, dict):
        kept = {k: float(v) for k, v in value.items() if k in types}
        return kept or None
    return value


def _append(raw: mne.io.BaseRaw, annot: mne.Annotations) -> None:
    """Append annotations MNE's detectors made for ``raw`` (onsets in their convention)."""
    if len(annot) == 0:
        return
    offset = raw.first_time if raw.info["meas_date"] is not None else 0.0
    add_annotations(raw, np.asarray(annot.onset) - offset, annot.duration, annot.description)


def _zero_spans(data: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    out = data.copy()
    for start, stop in spans:
        out[..., start:stop] = 0.0
    return out


def _bad_spans(raw: mne.io.BaseRaw) -> list[tuple[int, int]]:
    """Sample spans ``[start, stop)`` covered by annotations whose description starts BAD."""
    sfreq, n = raw.info["sfreq"], raw.n_times
    spans = []
    for item in annotations_from_raw(raw):
        if not item["description"].upper().startswith("BAD"):
            continue
        start = max(0, int(np.round(item["onset"] * sfreq)))
        stop = min(n, max(start + 1, int(np.round((item["onset"] + item["duration"]) * sfreq))))
        if stop > start:
            spans.append((start, stop))
    return spans
