"""Signal-space separation (SSS / tSSS) of MEGIN (Elekta Neuromag) recordings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages._mne import add_step, mne_quiet
from ephys_data.stages.base import Stage

if TYPE_CHECKING:
    import mne

__all__ = ["Maxwell", "is_megin"]

logger = get_logger(__name__)

#: Fallback expansion origin (head frame, metres) when the head shape is not digitised.
_DEFAULT_ORIGIN = (0.0, 0.0, 0.04)


def is_megin(info: mne.Info) -> bool:
    """Whether every MEG channel of ``info`` is a MEGIN/Elekta/Neuromag sensor (coils 3xxx)."""
    from mne.io.constants import FIFF

    kinds = [ch for ch in info["chs"] if ch["kind"] == FIFF.FIFFV_MEG_CH]
    return bool(kinds) and all(3000 <= int(ch["coil_type"]) < 4000 for ch in kinds)


class Maxwell(Stage):
    """Suppress external interference in MEGIN recordings with SSS or temporal SSS (tSSS).

    Runs :func:`mne.preprocessing.maxwell_filter` (internal order ``int_order``, external
    order ``ext_order``; tSSS when ``st_duration`` is set), optionally after finding noisy and
    flat channels with :func:`mne.preprocessing.find_bad_channels_maxwell`, which SSS then
    reconstructs. Fine-calibration and cross-talk files from the site improve the result.
    Only MEGIN/Elekta/Neuromag data (CamCAN, LibriBrain, ...) can be processed; other
    systems get a clear error. Put it right after `read`, before any filter.
    """

    class Config(ComponentConfig):
        origin: Literal["auto"] | tuple[float, float, float] = Field(
            "auto",
            description="Expansion origin in the head frame (metres), or `auto` (fit to the "
            "digitised head shape; (0, 0, 0.04) when there is none).",
        )
        int_order: int = Field(8, ge=1, le=12, description="Order of the internal expansion.")
        ext_order: int = Field(3, ge=1, le=8, description="Order of the external expansion.")
        st_duration: float | None = Field(
            None, gt=0, description="tSSS buffer length in seconds (e.g. 10); null = plain SSS."
        )
        st_correlation: float = Field(
            0.98, gt=0, le=1, description="tSSS subspace correlation limit."
        )
        regularize: Literal["in"] | None = Field(
            "in", description="`in` regularises the internal basis; null disables it."
        )
        calibration: Path | None = Field(
            None, description="Fine-calibration file (sss_cal.dat) of the site, if any."
        )
        cross_talk: Path | None = Field(
            None, description="Cross-talk compensation file (ct_sparse.fif), if any."
        )
        find_bads: bool = Field(
            True, description="Detect noisy and flat channels first (find_bad_channels_maxwell)."
        )
        bad_limit: float = Field(
            7.0, gt=0, description="Noise limit of find_bad_channels_maxwell (in SDs)."
        )
        coord_frame: Literal["head", "meg"] = Field(
            "head", description="Frame of the expansion (`meg` for empty-room recordings)."
        )

    def apply(self, recording: Recording) -> Recording:
        import mne

        cfg = self.config
        raw = recording.raw
        if not is_megin(raw.info):
            raise RecordingError(
                f"{recording.name}: Maxwell filtering applies to MEGIN/Elekta/Neuromag MEG "
                "recordings only; this one has no MEGIN sensors (drop `maxwell` for CTF, KIT, "
                "BTi and EEG data)"
            )
        for label, path in (("calibration", cfg.calibration), ("cross_talk", cfg.cross_talk)):
            if path is not None and not Path(path).is_file():
                raise RecordingError(f"{recording.name}: {label} file {path} does not exist")
        kwargs = self._kwargs(raw, recording.name)
        details: dict[str, Any] = {"origin": kwargs["origin"], "coord_frame": kwargs["coord_frame"]}
        raw = raw.copy()
        with mne_quiet(recording.name, logger):
            try:
                if cfg.find_bads:
                    noisy, flat = mne.preprocessing.find_bad_channels_maxwell(
                        raw,
                        limit=cfg.bad_limit,
                        ignore_ref=True,
                        h_freq=40.0 if raw.info["sfreq"] > 2 * 40.0 + 1 else None,
                        **kwargs,
                    )[:2]
                    raw.info["bads"] = list(dict.fromkeys([*raw.info["bads"], *noisy, *flat]))
                    details.update(noisy=list(noisy), flat=list(flat))
                details["bads_reconstructed"] = list(raw.info["bads"])
                raw = mne.preprocessing.maxwell_filter(
                    raw,
                    st_duration=cfg.st_duration,
                    st_correlation=cfg.st_correlation,
                    regularize=cfg.regularize,
                    ignore_ref=True,
                    **kwargs,
                )
            except (RuntimeError, ValueError) as err:
                raise RecordingError(f"{recording.name}: Maxwell filtering failed: {err}") from err
            out = recording.with_raw(raw)
        details.update(
            int_order=cfg.int_order, ext_order=cfg.ext_order, st_duration=cfg.st_duration
        )
        return add_step(out, "maxwell", **details)

    def _kwargs(self, raw: mne.io.BaseRaw, name: str) -> dict[str, Any]:
        cfg = self.config
        origin: Any = cfg.origin
        coord_frame = cfg.coord_frame
        if coord_frame == "head" and raw.info["dev_head_t"] is None:
            logger.warning("%s: no device-to-head transform; expanding in the device frame", name)
            coord_frame = "meg"
        if origin == "auto":
            n_dig = len(raw.info["dig"] or [])
            if coord_frame == "meg" or n_dig < 4:
                origin = _DEFAULT_ORIGIN
        if not isinstance(origin, str):
            origin = tuple(float(v) for v in origin)
        return {
            "origin": origin,
            "int_order": cfg.int_order,
            "ext_order": cfg.ext_order,
            "calibration": str(cfg.calibration) if cfg.calibration else None,
            "cross_talk": str(cfg.cross_talk) if cfg.cross_talk else None,
            "coord_frame": coord_frame,
        }

    def example_input(self, workdir: Path) -> Recording:
        """A short synthetic 306-channel MEGIN-like recording (4 s at 200 Hz)."""
        from ephys_data.examples import example_meg_recording

        return example_meg_recording(seconds=4.0, sfreq=200.0)
