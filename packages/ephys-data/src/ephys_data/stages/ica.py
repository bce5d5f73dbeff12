"""Removal of heartbeat (ECG) and eye (EOG) artefacts with independent component analysis."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages._mne import add_step, import_optional, mne_quiet, require_channels
from ephys_data.stages.base import Stage

if TYPE_CHECKING:
    import mne

__all__ = ["ICAArtifacts"]

logger = get_logger(__name__)


class ICAArtifacts(Stage):
    """Remove heartbeat and eye-movement artefacts with ICA.

    Fits :class:`mne.preprocessing.ICA` (seeded, so reruns agree) on a high-passed copy of
    the good MEG/EEG channels, finds the components that follow the heartbeat
    (:meth:`~mne.preprocessing.ICA.find_bads_ecg`; without an ECG channel the ECG is
    estimated from the magnetometers or gradiometers) and the eyes
    (:meth:`~mne.preprocessing.ICA.find_bads_eog`, from EOG channels or channels named in
    ``eog_channels``), and removes them from the unfiltered recording. ECG/EOG channels only
    reach this stage if `read` keeps them (``picks: [meg, eeg, ecg, eog]``); they are dropped
    afterwards unless ``drop_artifact_channels`` is false. The removed components and their
    scores are recorded in the provenance.
    """

    class Config(ComponentConfig):
        n_components: int | float = Field(
            20,
            gt=0,
            description="Components to fit (an int), or the fraction of variance "
            "they must explain (a float below 1). Capped at the data's rank.",
        )
        ch_types: list[Literal["mag", "grad", "eeg"]] = Field(
            default_factory=lambda: ["mag", "grad", "eeg"],
            description="Channel types ICA is fitted on and cleans (e.g. [mag] as MOUS did).",
        )
        method: Literal["fastica", "infomax", "picard"] = Field(
            "fastica",
            description="ICA algorithm (`fastica` needs scikit-learn, `picard` "
            "python-picard; `infomax` is extended Infomax).",
        )
        random_state: int = Field(0, description="Seed of the ICA fit.")
        max_iter: int | Literal["auto"] = Field("auto", description="Iterations of the fit.")
        fit_l_freq: float | None = Field(
            1.0, gt=0, description="High-pass (Hz) of the copy ICA is fitted on."
        )
        fit_h_freq: float | None = Field(
            None, gt=0, description="Low-pass (Hz) of the copy ICA is fitted on; null = none."
        )
        decim: int | None = Field(
            None, ge=1, description="Use every n-th sample for the fit (faster)."
        )
        ecg: bool = Field(True, description="Remove heartbeat components.")
        ecg_channel: str | None = Field(
            None, description="ECG channel; null = the ECG channel, else estimated from MEG."
        )
        ecg_method: Literal["ctps", "correlation"] = Field(
            "ctps", description="Component scoring for the heartbeat."
        )
        ecg_threshold: float | Literal["auto"] = Field(
            "auto", description="Score threshold for heartbeat components."
        )
        eog: bool = Field(True, description="Remove eye-movement and blink components.")
        eog_channels: list[str] | None = Field(
            None,
            description="Channels recording the eyes (e.g. [Fp1, Fp2] without EOG); "
            "null = EOG channels.",
        )
        eog_threshold: float = Field(3.0, gt=0, description="z-score threshold for EOG.")
        max_excluded: int | None = Field(
            None, ge=0, description="Remove at most this many components (best scores first)."
        )
        drop_artifact_channels: bool = Field(
            True, description="Drop ECG and EOG channels from the output."
        )

        @model_validator(mode="after")
        def _fit_band(self) -> ICAArtifacts.Config:
            if (
                self.fit_l_freq is not None
                and self.fit_h_freq is not None
                and self.fit_l_freq >= self.fit_h_freq
            ):
                raise ValueError("fit_l_freq must be below fit_h_freq")
            return self

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> ICAArtifacts.Config:
        """Ten components: enough for the example's heartbeat, and quick."""
        return cls.Config(n_components=10)

    def apply(self, recording: Recording) -> Recording:
        import mne

        cfg = self.config
        if cfg.method == "fastica":
            import_optional(
                "sklearn",
                "ICA with method 'fastica'",
                "scikit-learn",
                "pip install scikit-learn (or use method 'infomax')",
            )
        elif cfg.method == "picard":
            import_optional(
                "picard",
                "ICA with method 'picard'",
                "python-picard",
                "pip install python-picard (or use method 'infomax')",
            )
        raw = recording.raw
        all_types = raw.get_channel_types()
        picks = [
            i
            for i in mne.pick_types(raw.info, meg=True, eeg=True, ref_meg=False, exclude="bads")
            if all_types[i] in cfg.ch_types
        ]
        require_channels(
            recording, picks, f"good {'/'.join(cfg.ch_types)} channels", "ica_artifacts"
        )
        details: dict[str, Any] = {"method": cfg.method, "random_state": cfg.random_state}
        with mne_quiet(recording.name, logger):
            fit_raw = raw.copy()
            if cfg.fit_l_freq is not None or cfg.fit_h_freq is not None:
                fit_raw.filter(cfg.fit_l_freq, self._h_freq(fit_raw), picks=picks)
            ica = self._fit(fit_raw, picks, recording.name)
            details["n_components"] = int(ica.n_components_)
            ecg = self._ecg(ica, fit_raw, recording.name) if cfg.ecg else ([], [])
            eog = self._eog(ica, fit_raw, recording.name) if cfg.eog else ([], [])
            exclude = list(dict.fromkeys([*ecg[0], *eog[0]]))
            if cfg.max_excluded is not None:
                exclude = exclude[: cfg.max_excluded]
            cleaned = raw.copy()
            if exclude:
                ica.apply(cleaned, exclude=exclude)
            if cfg.drop_artifact_channels:
                artefact = [
                    cleaned.ch_names[i]
                    for i in mne.pick_types(cleaned.info, meg=False, ecg=True, eog=True)
                ]
                if artefact:
                    cleaned.drop_channels(artefact)
                    details["dropped_channels"] = artefact
            out = recording.with_raw(cleaned)
        details.update(
            excluded=sorted(int(i) for i in exclude),
            ecg_components=[int(i) for i in ecg[0]],
            ecg_scores=ecg[1],
            eog_components=[int(i) for i in eog[0]],
            eog_scores=eog[1],
        )
        logger.info(
            "%s: ICA removed %d of %d components (ECG %s, EOG %s)",
            recording.name,
            len(exclude),
            ica.n_components_,
            ecg[0],
            eog[0],
        )
        return add_step(
            out.with_provenance(ica_excluded=sorted(int(i) for i in exclude)),
            "ica_artifacts",
            **details,
        )

    def _h_freq(self, raw: mne.io.BaseRaw) -> float | None:
        h_freq = self.config.fit_h_freq
        return h_freq if h_freq is None or h_freq < raw.info["sfreq"] / 2 else None

    def _fit(self, fit_raw: mne.io.BaseRaw, picks: Any, name: str) -> Any:
        import mne

        cfg = self.config
        n_components: int | float = cfg.n_components
        if isinstance(n_components, float) and n_components >= 1:
            n_components = int(n_components)
        if isinstance(n_components, int):
            rank = sum(mne.compute_rank(fit_raw.copy().pick(picks), rank=None).values())
            n_components = max(1, min(n_components, int(rank), len(picks) - 1))
        fit_params = {"extended": True} if cfg.method == "infomax" else None
        ica = mne.preprocessing.ICA(
            n_components=n_components,
            method=cfg.method,
            random_state=cfg.random_state,
            max_iter=cfg.max_iter,
            fit_params=fit_params,
        )
        try:
            ica.fit(fit_raw, picks=picks, decim=cfg.decim, reject_by_annotation=True)
        except (RuntimeError, ValueError) as err:
            raise RecordingError(f"{name}: ICA fit failed: {err}") from err
        return ica

    def _ecg(self, ica: Any, raw: mne.io.BaseRaw, name: str) -> tuple[list[int], list[float]]:
        import mne

        cfg = self.config
        channel = cfg.ecg_channel
        if channel is not None and channel not in raw.ch_names:
            raise RecordingError(f"{name}: ECG channel {channel!r} is not in the recording")
        has_ecg = len(mne.pick_types(raw.info, meg=False, ecg=True)) > 0
        has_meg = len(mne.pick_types(raw.info, meg=True, ref_meg=False)) > 0
        if channel is None and not has_ecg and not has_meg:
            logger.info("%s: no ECG channel and no MEG to estimate one; heartbeat skipped", name)
            return [], []
        try:
            indices, scores = ica.find_bads_ecg(
                raw, ch_name=channel, method=cfg.ecg_method, threshold=cfg.ecg_threshold
            )
        except (RuntimeError, ValueError) as err:
            logger.warning(
                "%s: heartbeat detection failed (%s); no ECG component removed", name, err
            )
            return [], []
        return [int(i) for i in indices], _top_scores(scores, indices)

    def _eog(self, ica: Any, raw: mne.io.BaseRaw, name: str) -> tuple[list[int], list[float]]:
        import mne

        cfg = self.config
        channels = cfg.eog_channels
        if channels is None:
            channels = [raw.ch_names[i] for i in mne.pick_types(raw.info, meg=False, eog=True)]
        missing = [ch for ch in channels if ch not in raw.ch_names]
        if missing:
            raise RecordingError(f"{name}: EOG channel(s) {missing} are not in the recording")
        if not channels:
            logger.info("%s: no EOG channel; eye artefacts skipped (set `eog_channels`)", name)
            return [], []
        try:
            indices, scores = ica.find_bads_eog(raw, ch_name=channels, threshold=cfg.eog_threshold)
        except (RuntimeError, ValueError) as err:
            logger.warning("%s: EOG detection failed (%s); no EOG component removed", name, err)
            return [], []
        return [int(i) for i in indices], _top_scores(scores, indices)

    def example_input(self, workdir: Path) -> Recording:
        """A synthetic MEGIN-like recording with a heartbeat and no ECG channel."""
        from ephys_data.examples import example_meg_recording

        return example_meg_recording(seconds=12.0, sfreq=100.0)


def _top_scores(scores: Any, indices: Any) -> list[float]:
    """The absolute score of each selected component (largest over EOG channels)."""
    import numpy as np

    arr = np.abs(np.atleast_2d(np.asarray(scores, dtype=float)))
    return [round(float(arr[:, int(i)].max()), 4) for i in indices]
