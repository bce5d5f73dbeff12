"""Projection of sensor data onto a cortical parcellation (parcel time courses)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from ephys_core.components import ComponentConfig
from ephys_core.logging import get_logger
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages._mne import add_step, import_optional, mne_quiet
from ephys_data.stages.base import Stage

if TYPE_CHECKING:
    import mne

__all__ = ["SourceProjection", "parcel_layout"]

logger = get_logger(__name__)

#: Unit of the parcel time courses of each inverse method.
UNITS = {"dSPM": "dSPM", "sLORETA": "sLORETA", "eLORETA": "Am", "MNE": "Am"}

#: Source spaces and BEM solutions already computed in this process (they depend only on the
#: anatomy, not on the recording).
_ANATOMY_CACHE: dict[tuple[Any, ...], Any] = {}


def parcel_layout(centroids: np.ndarray) -> np.ndarray:
    """2-D positions of parcels: the first two principal components of their centroids.

    The projection is scaled uniformly (distances keep their proportions) so that it spans
    ``[0, 1]`` along its longer axis and is centred along the shorter one. Signs are fixed so
    that the largest loading of each component is positive, which makes the layout
    deterministic.
    """
    centered = centroids - centroids.mean(axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    axes = vt[:2] * np.sign(vt[:2, np.argmax(np.abs(vt[:2]), axis=1)].diagonal())[:, None]
    xy = centered @ axes.T
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float((hi - lo).max())
    if span == 0:
        return np.full_like(xy, 0.5)
    return (xy - lo) / span + (1 - (hi - lo) / span) / 2


class SourceProjection(Stage):
    """Project MEG (or EEG) data onto the parcels of a cortical atlas with an MNE inverse.

    For each recording: coregister it to the template brain (``fsaverage`` by default) from
    its digitised fiducials and head shape (MRI-less coregistration with ICP), or use the
    fsaverage head-to-MRI transform MNE ships when nothing was digitised; set up a cortical
    source space and a single-layer BEM (three layers for EEG); compute the forward model, an
    ad-hoc (or data) noise covariance and the inverse operator; and reduce the source time
    courses to one per label of the parcellation (Desikan-Killiany ``aparc``: 68 labels once
    ``unknown`` and ``corpuscallosum`` are left out) with ``mean_flip`` or ``pca_flip``.

    The result is array-backed: channel names are the label names (``bankssts-lh``), types
    ``parcel``, units per method (``dSPM``, ``sLORETA``, ``Am``), ``pos_3d`` the label
    centroids (MRI coordinates, metres) and ``pos_2d`` a PCA layout of the centroids in
    ``[0, 1]`` (uniformly scaled). The template anatomy is never downloaded:
    ``subjects_dir`` (or the ``SUBJECTS_DIR`` environment variable) must hold it. Nothing is
    written to disk.
    """

    class Config(ComponentConfig):
        subjects_dir: Path | None = Field(
            None,
            description="FreeSurfer subjects folder holding `subject`; null = the "
            "SUBJECTS_DIR environment variable.",
        )
        subject: str = Field("fsaverage", description="Template subject (folder name).")
        parcellation: str = Field(
            "aparc", description="Annotation of the parcels (`aparc` = Desikan-Killiany)."
        )
        exclude: list[str] = Field(
            default_factory=lambda: ["unknown", "corpuscallosum"],
            description="Labels whose name contains one of these (case-insensitive) are left out.",
        )
        method: Literal["dSPM", "MNE", "sLORETA", "eLORETA"] = Field(
            "dSPM", description="Inverse method."
        )
        snr: float = Field(3.0, gt=0, description="Assumed SNR; lambda2 = 1 / snr**2.")
        loose: float = Field(0.2, ge=0, le=1, description="Loose orientation constraint.")
        depth: float | None = Field(0.8, ge=0, description="Depth weighting exponent.")
        mode: Literal["mean_flip", "pca_flip", "mean"] = Field(
            "mean_flip", description="How the sources of a label become one time course."
        )
        ch_types: Literal["meg", "eeg", "meg+eeg"] = Field(
            "meg", description="Sensors used (EEG needs a three-layer `conductivity`)."
        )
        trans: Literal["auto", "fsaverage"] | Path = Field(
            "auto",
            description="Head-to-MRI transform: `auto` (fit to digitised fiducials "
            "and head shape, else `fsaverage`), `fsaverage` (MNE's template) or a -trans.fif.",
        )
        icp_iterations: int = Field(
            10, ge=0, description="ICP iterations of `auto` coregistration (head shape)."
        )
        spacing: str = Field("ico5", description="Source spacing: ico<n>, oct<n> or all.")
        bem_ico: int | None = Field(
            4, ge=1, le=5, description="Downsampling of the BEM surfaces; null = as stored."
        )
        conductivity: list[float] = Field(
            default_factory=lambda: [0.3],
            description="BEM conductivities (S/m): one value (brain, MEG) or three "
            "(brain, skull, scalp; needed for EEG).",
        )
        mindist: float = Field(
            5.0, ge=0, description="Sources closer than this to the inner skull are dropped (mm)."
        )
        noise_cov: Literal["adhoc", "data"] = Field(
            "adhoc",
            description="`adhoc` (diagonal, typical sensor noise) or `data` "
            "(regularised covariance of the recording itself).",
        )
        detrend: bool = Field(True, description="Remove a linear trend from each parcel.")
        source_space_file: Path | None = Field(
            None, description="Precomputed source space (-src.fif); null = computed once."
        )
        bem_file: Path | None = Field(
            None, description="Precomputed BEM solution (-bem-sol.fif); null = computed once."
        )

        @field_validator("spacing")
        @classmethod
        def _spacing(cls, value: str) -> str:
            if not re.fullmatch(r"(ico|oct)\d|all", value):
                raise ValueError(f"spacing must be ico<n>, oct<n> or all, not {value!r}")
            return value

        @field_validator("conductivity")
        @classmethod
        def _layers(cls, value: list[float]) -> list[float]:
            if len(value) not in (1, 3) or min(value) <= 0:
                raise ValueError("conductivity must hold 1 or 3 positive values")
            return value

    requires: ClassVar[str] = "mne"

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> SourceProjection.Config:
        """A synthetic template subject written under ``workdir`` (a few parcels)."""
        if workdir is None:
            return cls.Config()
        from ephys_data.examples import write_synthetic_subject

        subjects_dir = Path(workdir) / "subjects"
        if not (subjects_dir / "fsaverage" / "label" / "rh.aparc.annot").exists():
            write_synthetic_subject(subjects_dir)
        return cls.Config(subjects_dir=subjects_dir, spacing="ico2", bem_ico=None)

    def example_input(self, workdir: Path) -> Recording:
        """A short synthetic MEGIN-like recording with digitised fiducials."""
        from ephys_data.examples import example_meg_recording

        return example_meg_recording(seconds=4.0, heartbeat=False)

    def apply(self, recording: Recording) -> Recording:
        cfg = self.config
        name = recording.name
        subjects_dir = self._subjects_dir(name)
        import_optional(
            "nibabel",
            "source projection (reading FreeSurfer surfaces)",
            "nibabel",
            "pip install nibabel",
        )
        with mne_quiet(name, logger):
            raw, picks = self._sensors(recording)
            info = raw.info
            trans, how = self._trans(info, subjects_dir, name)
            src = self._source_space(subjects_dir, name)
            labels = self._labels(subjects_dir, src, name)
            bem = self._bem(subjects_dir, name)
            inv = self._inverse(raw, trans, src, bem, name)
            sensors = raw.get_data()
            data = self.label_weights(inv, info, labels, src, sensors) @ sensors
        if cfg.detrend:
            from scipy.signal import detrend

            data = detrend(data, axis=1, type="linear")
        centroids = np.array([_centroid(label, src) for label in labels])
        layout = parcel_layout(centroids)
        names = tuple(label.name for label in labels)
        out = recording.with_data(
            np.ascontiguousarray(data),
            ch_names=names,
            ch_types=("parcel",) * len(names),
            units=(UNITS[cfg.method],) * len(names),
            pos_3d=centroids,
            pos_2d=layout,
            ori_3d=None,
            coil_x_3d=None,
            bads=(),
        )
        return add_step(
            out,
            "source_projection",
            subject=cfg.subject,
            subjects_dir=str(subjects_dir),
            parcellation=cfg.parcellation,
            method=cfg.method,
            mode=cfg.mode,
            snr=cfg.snr,
            coregistration=how,
            n_sensors=len(picks),
            n_sources=int(sum(s["nuse"] for s in src)),
            n_parcels=len(names),
            noise_cov=cfg.noise_cov,
            layout_distance_correlation=_distance_correlation(centroids, layout),
        )

    # -- steps ------------------------------------------------------------------------------------
    def _subjects_dir(self, name: str) -> Path:
        cfg = self.config
        folder = cfg.subjects_dir or os.environ.get("SUBJECTS_DIR")
        if not folder:
            raise RecordingError(
                f"{name}: source projection needs a FreeSurfer subjects folder holding "
                f"{cfg.subject!r}. Set `subjects_dir` in `source_projection` (or the "
                "SUBJECTS_DIR environment variable); ephys never downloads it (MNE's "
                "mne.datasets.fetch_fsaverage() can, once)"
            )
        folder = Path(folder).expanduser()
        annot = folder / cfg.subject / "label" / f"lh.{cfg.parcellation}.annot"
        if not annot.exists():
            raise RecordingError(
                f"{name}: {folder / cfg.subject} is not a FreeSurfer subject with the "
                f"{cfg.parcellation!r} parcellation ({annot} is missing); point "
                "`subjects_dir` at the folder that contains it"
            )
        return folder

    def _sensors(self, recording: Recording) -> tuple[mne.io.BaseRaw, list[int]]:
        import mne

        cfg = self.config
        raw = recording.raw.copy()
        meg = cfg.ch_types in ("meg", "meg+eeg")
        eeg = cfg.ch_types in ("eeg", "meg+eeg")
        picks = mne.pick_types(raw.info, meg=meg, eeg=eeg, ref_meg=False, exclude="bads")
        if len(picks) == 0:
            raise RecordingError(
                f"{recording.name}: no good {cfg.ch_types.upper()} channels to project; "
                "set `ch_types` of `source_projection` to the sensors the recording has"
            )
        if eeg and len(cfg.conductivity) != 3:
            raise RecordingError(
                f"{recording.name}: EEG source projection needs a three-layer head model; "
                "set `conductivity: [0.3, 0.006, 0.3]`"
            )
        raw.pick(picks)
        if eeg and "eeg" in raw.get_channel_types():
            raw.set_eeg_reference("average", projection=True)
        if meg and raw.info["dev_head_t"] is None:
            raise RecordingError(
                f"{recording.name}: the recording has no device-to-head transform, so its "
                "MEG sensors cannot be placed relative to the head"
            )
        return raw, list(picks)

    def _trans(self, info: mne.Info, subjects_dir: Path, name: str) -> tuple[Any, str]:
        import mne
        from mne.io.constants import FIFF

        cfg = self.config
        if isinstance(cfg.trans, Path):
            if not cfg.trans.is_file():
                raise RecordingError(f"{name}: transform file {cfg.trans} does not exist")
            return mne.read_trans(cfg.trans), "file"
        dig = info["dig"] or []
        cardinal = [d for d in dig if d["kind"] == FIFF.FIFFV_POINT_CARDINAL]
        if cfg.trans == "fsaverage" or len(cardinal) < 3:
            if cfg.trans == "auto":
                logger.info("%s: no digitised fiducials; using MNE's fsaverage transform", name)
            return "fsaverage", "fsaverage"
        try:
            coreg = mne.coreg.Coregistration(info, cfg.subject, subjects_dir, fiducials="auto")
            coreg.fit_fiducials()
            shape = [d for d in dig if d["kind"] in (FIFF.FIFFV_POINT_EXTRA, FIFF.FIFFV_POINT_EEG)]
            how = "fiducials"
            if cfg.icp_iterations and len(shape) >= 4:
                coreg.fit_icp(n_iterations=cfg.icp_iterations)
                how = "fiducials+icp"
        except (RuntimeError, ValueError, OSError) as err:
            raise RecordingError(
                f"{name}: coregistration to {cfg.subject} failed: {err}. Set `trans: fsaverage`"
                " or give a -trans.fif file"
            ) from err
        return coreg.trans, how

    def _source_space(self, subjects_dir: Path, name: str) -> Any:
        import mne

        cfg = self.config
        if cfg.source_space_file is not None:
            return _cached(
                ("src-file", str(cfg.source_space_file)),
                lambda: mne.read_source_spaces(cfg.source_space_file),
            )
        stored = (
            subjects_dir
            / cfg.subject
            / "bem"
            / (f"{cfg.subject}-{cfg.spacing[:3]}-{cfg.spacing[3:]}-src.fif")
        )
        if cfg.spacing != "all" and stored.exists():
            return _cached(("src-file", str(stored)), lambda: mne.read_source_spaces(stored))
        try:
            return _cached(
                ("src", str(subjects_dir), cfg.subject, cfg.spacing),
                lambda: mne.setup_source_space(
                    cfg.subject, spacing=cfg.spacing, subjects_dir=subjects_dir, add_dist=False
                ),
            )
        except (OSError, RuntimeError, ValueError) as err:
            raise RecordingError(
                f"{name}: cannot build the {cfg.spacing} source space of {cfg.subject} in "
                f"{subjects_dir} (needs surf/lh.white, lh.sphere and the rh files): {err}"
            ) from err

    def _bem(self, subjects_dir: Path, name: str) -> Any:
        import mne

        cfg = self.config
        if cfg.bem_file is not None:
            return _cached(
                ("bem-file", str(cfg.bem_file)), lambda: mne.read_bem_solution(cfg.bem_file)
            )

        def build() -> Any:
            model = mne.make_bem_model(
                cfg.subject,
                ico=cfg.bem_ico,
                conductivity=tuple(cfg.conductivity),
                subjects_dir=subjects_dir,
            )
            for surface in model:
                # nibabel reads FreeSurfer triangles as big-endian integers, which MNE's
                # numba-compiled field code (used when numba is installed) rejects
                for key in ("tris", "use_tris"):
                    if key in surface and surface[key] is not None:
                        surface[key] = np.ascontiguousarray(surface[key], dtype=np.int64)
            return mne.make_bem_solution(model)

        try:
            return _cached(
                ("bem", str(subjects_dir), cfg.subject, cfg.bem_ico, tuple(cfg.conductivity)), build
            )
        except (OSError, RuntimeError, ValueError) as err:
            raise RecordingError(
                f"{name}: cannot build the BEM of {cfg.subject} in {subjects_dir} (needs "
                f"bem/inner_skull.surf, plus outer_skull and outer_skin for 3 layers): {err}"
            ) from err

    def _labels(self, subjects_dir: Path, src: Any, name: str) -> list[Any]:
        import mne

        cfg = self.config
        labels = mne.read_labels_from_annot(
            cfg.subject, cfg.parcellation, subjects_dir=subjects_dir
        )
        excluded = [p.lower() for p in cfg.exclude]
        kept, empty = [], []
        vertno = {s["id"]: s["vertno"] for s in src}
        hemi_id = {"lh": 101, "rh": 102}  # FIFFV_MNE_SURF_LEFT/RIGHT_HEMI
        for label in labels:
            if any(p in label.name.lower() for p in excluded):
                continue
            if np.intersect1d(label.vertices, vertno.get(hemi_id.get(label.hemi), [])).size:
                kept.append(label)
            else:
                empty.append(label.name)
        if empty:
            logger.warning(
                "%s: labels without sources in the %s source space left out: %s",
                name,
                cfg.spacing,
                ", ".join(empty),
            )
        if not kept:
            raise RecordingError(
                f"{name}: no label of {cfg.parcellation!r} has sources; use a denser `spacing`"
            )
        return kept

    def _inverse(self, raw: mne.io.BaseRaw, trans: Any, src: Any, bem: Any, name: str) -> Any:
        import mne

        cfg = self.config
        meg = cfg.ch_types in ("meg", "meg+eeg")
        eeg = cfg.ch_types in ("eeg", "meg+eeg")
        try:
            fwd = mne.make_forward_solution(
                raw.info,
                trans=trans,
                src=src,
                bem=bem,
                meg=meg,
                eeg=eeg,
                mindist=cfg.mindist,
                n_jobs=None,
            )
        except (RuntimeError, ValueError) as err:
            raise RecordingError(f"{name}: forward model failed: {err}") from err
        if cfg.noise_cov == "adhoc":
            cov = mne.make_ad_hoc_cov(raw.info)
        else:
            cov = mne.compute_raw_covariance(raw, method="empirical")
            cov = mne.cov.regularize(cov, raw.info, mag=0.1, grad=0.1, eeg=0.1)
        return mne.minimum_norm.make_inverse_operator(
            raw.info, fwd, cov, loose=cfg.loose, depth=cfg.depth
        )

    def label_weights(
        self, inv: Any, info: mne.Info, labels: list[Any], src: Any, data: np.ndarray
    ) -> np.ndarray:
        """``(n_labels, n_sensors)`` weights turning sensor data ``X`` into parcel signals.

        The inverse is linear, so its imaging kernel ``K`` (sources x sensors) is obtained by
        applying it to an identity "evoked" response, and MNE's label extraction is applied to
        the kernel instead of to every source time course (which would not fit in memory for a
        long recording at ico5). ``mean``/``mean_flip`` are linear: extracting from ``K`` gives
        the label weights directly. ``pca_flip`` is computed exactly on a compressed copy
        ``K U S`` of the data ``X = U S V^T``: it has the same left singular vectors and
        singular values as ``K X``, and its right ones map back through ``S^-1 U^T``.
        """
        import mne

        cfg = self.config
        lambda2 = 1.0 / cfg.snr**2
        identity = mne.EvokedArray(np.eye(len(info["ch_names"])), info, tmin=0.0, nave=1)
        stc = mne.minimum_norm.apply_inverse(
            identity, inv, lambda2, method=cfg.method, pick_ori="normal"
        )
        kernel = stc.data
        if cfg.mode != "pca_flip":
            return mne.extract_label_time_course(stc, labels, src, mode=cfg.mode)
        eigval, eigvec = np.linalg.eigh(data @ data.T)
        keep = eigval > eigval.max() * 1e-12
        scale = np.sqrt(eigval[keep])
        basis = eigvec[:, keep]
        compressed = mne.SourceEstimate(
            kernel @ (basis * scale), stc.vertices, tmin=0.0, tstep=1.0, subject=stc.subject
        )
        out = mne.extract_label_time_course(compressed, labels, src, mode="pca_flip")
        return (out / scale) @ basis.T


def _cached(key: tuple[Any, ...], build: Any) -> Any:
    if key not in _ANATOMY_CACHE:
        _ANATOMY_CACHE[key] = build()
    return _ANATOMY_CACHE[key]


def _centroid(label: Any, src: Any) -> np.ndarray:
    """Mean position (metres, MRI frame) of the label's vertices in the source space."""
    space = src[0] if label.hemi == "lh" else src[1]
    used = np.intersect1d(label.vertices, space["vertno"])
    return space["rr"][used].mean(axis=0)


def _distance_correlation(pos_3d: np.ndarray, pos_2d: np.ndarray) -> float:
    """Correlation of pairwise parcel distances in 3-D and in the 2-D layout."""
    if len(pos_3d) < 3:
        return float("nan")
    iu = np.triu_indices(len(pos_3d), k=1)
    d3 = np.linalg.norm(pos_3d[:, None] - pos_3d[None], axis=-1)[iu]
    d2 = np.linalg.norm(pos_2d[:, None] - pos_2d[None], axis=-1)[iu]
    return float(np.corrcoef(d3, d2)[0, 1])
