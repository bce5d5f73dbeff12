"""Source projection onto parcels, on a synthetic FreeSurfer subject (nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest

from ephys_data.examples import example_meg_recording, example_recording, write_synthetic_subject
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.io import Read
from ephys_data.stages.source import SourceProjection, parcel_layout

PARCELS = {
    f"{part}-{hemi}"
    for part in ("anteriorsuperior", "anteriorinferior", "posteriorsuperior", "posteriorinferior")
    for hemi in ("lh", "rh")
}


@pytest.fixture(scope="module")
def subjects_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subjects")
    write_synthetic_subject(folder)
    return folder


@pytest.fixture(scope="module")
def meg():
    rec = example_meg_recording(seconds=4.0, heartbeat=False)
    labels = np.zeros(rec.n_times, dtype=np.int16)
    labels[100:300] = 2
    return rec.replace(
        labels=labels,
        label_names={2: "two"},
        annotations=({"onset": 1.0, "duration": 0.5, "description": "BAD_x"},),
    )


def project(subjects_dir, rec: Recording, **params) -> Recording:
    params = {"subjects_dir": subjects_dir, "spacing": "ico2", "bem_ico": None, **params}
    return SourceProjection(SourceProjection.Config(**params))(rec)


def check_parcels(out: Recording, rec: Recording, unit: str = "dSPM") -> None:
    assert out.state == "array"
    assert set(out.ch_names) == PARCELS and out.n_channels == len(PARCELS)  # no "unknown"
    assert out.data.shape == (len(PARCELS), rec.n_times)
    assert np.isfinite(out.data).all() and (out.data.std(axis=1) > 0).all()
    assert set(out.ch_types) == {"parcel"} and set(out.units) == {unit}
    assert out.pos_3d.shape == (len(PARCELS), 3) and out.ori_3d is None
    assert out.pos_2d.shape == (len(PARCELS), 2)
    assert out.pos_2d.min() >= 0.0 and out.pos_2d.max() == 1.0
    assert out.sfreq == rec.sfreq


def test_synthetic_meg(subjects_dir, meg):
    out = project(subjects_dir, meg)
    check_parcels(out, meg)
    left = [i for i, name in enumerate(out.ch_names) if name.endswith("-lh")]
    assert (out.pos_3d[left, 0] < 0).all()  # centroids of left parcels in the left hemisphere
    assert np.array_equal(out.labels, meg.labels) and out.label_names == meg.label_names
    assert out.annotations == meg.annotations
    step = out.provenance["steps"][-1]
    assert step["coregistration"] == "fiducials+icp" and step["n_parcels"] == len(PARCELS)
    assert step["n_sensors"] == 306


def test_label_weights_equal_mne_on_every_source(subjects_dir, meg):
    """The kernel shortcut gives what MNE gives from full source time courses."""
    import mne

    for mode in ("mean_flip", "pca_flip"):
        stage = SourceProjection(
            SourceProjection.Config(
                subjects_dir=subjects_dir, spacing="ico2", bem_ico=None, mode=mode, detrend=False
            )
        )
        raw, _ = stage._sensors(meg)
        trans, _ = stage._trans(raw.info, subjects_dir, "x")
        src = stage._source_space(subjects_dir, "x")
        labels = stage._labels(subjects_dir, src, "x")
        inv = stage._inverse(raw, trans, src, stage._bem(subjects_dir, "x"), "x")
        data = raw.get_data()
        fast = stage.label_weights(inv, raw.info, labels, src, data) @ data
        stc = mne.minimum_norm.apply_inverse_raw(
            raw, inv, 1 / 9, method="dSPM", pick_ori="normal", verbose="error"
        )
        full = mne.extract_label_time_course(stc, labels, src, mode=mode, verbose="error")
        np.testing.assert_allclose(fast, full, rtol=1e-6, atol=1e-6 * np.abs(full).max())
        assert np.array_equal(project(subjects_dir, meg, mode=mode, detrend=False).data, fast)


@pytest.mark.parametrize(
    ("method", "unit"), [("MNE", "Am"), ("sLORETA", "sLORETA"), ("eLORETA", "Am")]
)
def test_other_inverse_methods(subjects_dir, meg, method, unit):
    out = project(subjects_dir, meg, method=method, noise_cov="data")
    check_parcels(out, meg, unit)


@pytest.mark.realdata
def test_real_ctf_with_digitisation(subjects_dir, recordings):
    rec = Read(Read.Config())(
        Recording.unloaded(recordings / "ctf/testdata_ctf_short_discontinuous.ds")
    )
    out = project(subjects_dir, rec)
    check_parcels(out, rec)
    step = out.provenance["steps"][-1]
    assert step["coregistration"] == "fiducials+icp" and step["n_sensors"] == 273


@pytest.mark.realdata
def test_real_kit_without_digitisation(subjects_dir, recordings):
    rec = Read(Read.Config())(Recording.unloaded(recordings / "kit/test.sqd"))
    out = project(subjects_dir, rec)
    check_parcels(out, rec)
    assert out.provenance["steps"][-1]["coregistration"] == "fsaverage"


def test_eeg_needs_three_layers_and_works_with_them(subjects_dir, tmp_path):
    rec = example_recording(seconds=4.0)
    with pytest.raises(RecordingError, match="three-layer"):
        project(subjects_dir, rec, ch_types="eeg")
    coarse = tmp_path / "coarse"  # a three-layer BEM of 642-point surfaces takes long
    write_synthetic_subject(coarse, grade=2)
    out = project(coarse, rec, ch_types="eeg", conductivity=[0.3, 0.006, 0.3], spacing="all")
    check_parcels(out, rec)
    assert out.provenance["steps"][-1]["n_sensors"] == 32


def test_subjects_dir_is_required_and_never_downloaded(monkeypatch, meg, subjects_dir, tmp_path):
    monkeypatch.delenv("SUBJECTS_DIR", raising=False)
    stage = SourceProjection(SourceProjection.Config(spacing="ico2", bem_ico=None))
    with pytest.raises(RecordingError, match="SUBJECTS_DIR environment variable"):
        stage(meg)
    with pytest.raises(RecordingError, match="is not a FreeSurfer subject"):
        project(tmp_path, meg)
    monkeypatch.setenv("SUBJECTS_DIR", str(subjects_dir))
    monkeypatch.chdir(tmp_path)
    out = stage(meg)  # the environment variable is the fallback
    check_parcels(out, meg)
    assert list(tmp_path.iterdir()) == []  # nothing written to the current folder


def test_parcel_layout():
    rng = np.random.default_rng(0)
    centroids = rng.normal(size=(20, 3)) * [0.05, 0.03, 0.001]
    xy = parcel_layout(centroids)
    assert xy.shape == (20, 2) and xy.min() == 0.0 and xy.max() == 1.0
    assert np.ptp(xy, axis=0).min() < 0.9  # the narrower axis is not stretched
    np.testing.assert_array_equal(parcel_layout(centroids), xy)  # deterministic
    d3 = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    d2 = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    assert np.corrcoef(d3.ravel(), d2.ravel())[0, 1] > 0.99  # near-planar: distances kept


@pytest.mark.integration
@pytest.mark.realdata
def test_full_pipeline_to_a_prepared_session(subjects_dir, recordings, tmp_path):
    """Every kind of stage in one pipeline, written by the dataset writer (JSON metadata)."""
    import json

    from ephys_core.protocols import RecordingRef
    from ephys_data.pipeline import Pipeline, process_session

    ref = RecordingRef(
        path=recordings / "kit/test.sqd", name="sub-01_task-auditory", task="auditory"
    )
    pipeline = Pipeline(
        [
            {"name": "read", "params": {}},
            {"name": "bandpass", "params": {"l_freq": 1.0, "h_freq": 40.0}},
            {"name": "notch", "params": {"line_freq": 50}},
            {"name": "bad_segments", "params": {"muscle": True}},
            {"name": "resample", "params": {"sfreq": 100}},
            {"name": "bad_channels", "params": {}},
            {
                "name": "condition_labels",
                "params": {
                    "stim_channel": "STI 014",
                    "rules": [{"codes": [255], "label": 1, "name": "x"}],
                },
            },
            {
                "name": "source_projection",
                "params": {"subjects_dir": str(subjects_dir), "spacing": "ico2", "bem_ico": None},
            },
            {"name": "normalize", "params": {}},
        ]
    )
    result = process_session(ref, pipeline, tmp_path)
    assert result.status == "done", result.error
    meta = json.loads(next(tmp_path.glob("**/meta.json")).read_text())
    assert meta["sfreq"] == 100.0 and meta["n_times"] == 200
    assert set(meta["ch_names"]) == PARCELS and set(meta["units"]) == {"dSPM"}
    assert meta["labels"]["names"] == {"0": "none", "1": "x"}
    assert any(a["description"] == "STI 014/255" for a in meta["annotations"])
    assert [s["stage"] for s in meta["provenance"]["steps"]] == [
        "read",
        "bandpass",
        "notch",
        "bad_segments",
        "resample",
        "bad_channels",
        "condition_labels",
        "source_projection",
    ]
