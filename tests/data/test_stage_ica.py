"""ICA removal of heartbeat and eye artefacts."""

from __future__ import annotations

import numpy as np
import pytest

from ephys_data.examples import example_meg_raw, example_raw
from ephys_data.recording import Recording
from ephys_data.stages.ica import ICAArtifacts
from ephys_data.stages.io import Read


def test_heartbeat_estimated_from_meg_is_removed():
    with_heart = example_meg_raw(seconds=12.0, sfreq=100.0, heartbeat=True)
    without = example_meg_raw(seconds=12.0, sfreq=100.0, heartbeat=False)  # same brain, noise
    cardiac = with_heart.get_data() - without.get_data()
    rec = Recording.from_raw(with_heart, name="heart")
    out = ICAArtifacts(ICAArtifacts.Config(n_components=10))(rec)
    step = out.provenance["steps"][-1]
    assert step["ecg_components"] and step["excluded"] == sorted(step["ecg_components"])
    assert out.provenance["ica_excluded"] == step["excluded"]
    residual = out.get_data() - without.get_data()
    assert np.linalg.norm(residual) < 0.3 * np.linalg.norm(cardiac)
    assert out.ch_names == rec.ch_names
    again = ICAArtifacts(ICAArtifacts.Config(n_components=10))(rec)  # seeded: reproducible
    np.testing.assert_array_equal(again.get_data(), out.get_data())


def blink_recording() -> tuple[Recording, np.ndarray]:
    import mne

    raw = example_raw(seconds=20.0, sfreq=100.0)
    n = raw.n_times
    blinks = np.zeros(n)
    for start in np.arange(150, n - 50, 230):
        blinks[start : start + 30] += np.hanning(30)
    frontal = {"Fp1": 1.0, "Fp2": 1.0, "AF3": 0.6, "AF4": 0.6, "F3": 0.3, "F4": 0.3, "Fz": 0.3}
    weights = np.array([frontal.get(name, 0.02) for name in raw.ch_names])
    artefact = 8e-5 * weights[:, None] * blinks
    raw._data += artefact
    eog = mne.io.RawArray(
        1e-4 * blinks[None] + 1e-6 * np.random.default_rng(1).standard_normal((1, n)),
        mne.create_info(["EOG061"], raw.info["sfreq"], "eog"),
        verbose="error",
    )
    raw.add_channels([eog], force_update_info=True)
    return Recording.from_raw(raw, name="blinks"), artefact


def test_blinks_are_removed_and_the_eog_channel_dropped():
    rec, artefact = blink_recording()
    out = ICAArtifacts(ICAArtifacts.Config(n_components=15, method="infomax"))(rec)
    step = out.provenance["steps"][-1]
    assert step["eog_components"] and not step["ecg_components"]  # no ECG, no MEG: skipped
    assert "EOG061" not in out.ch_names and step["dropped_channels"] == ["EOG061"]
    eeg = [rec.ch_names.index(name) for name in out.ch_names]
    before = rec.get_data()[eeg]
    brain = before - artefact
    fp1 = out.ch_names.index("Fp1")
    assert np.linalg.norm(out.get_data()[fp1] - brain[fp1]) < 0.3 * np.linalg.norm(artefact[fp1])


def test_eog_proxy_channels_and_keeping_artefact_channels():
    rec, _ = blink_recording()
    out = ICAArtifacts(
        ICAArtifacts.Config(
            n_components=15,
            eog_channels=["Fp1", "Fp2"],
            drop_artifact_channels=False,
        )
    )(rec)
    assert "EOG061" in out.ch_names
    assert out.provenance["steps"][-1]["eog_components"]


@pytest.mark.realdata
def test_real_megin(recordings):
    rec = Read(Read.Config())(Recording.unloaded(recordings / "megin/141027_cropped_90Hz_raw.fif"))
    out = ICAArtifacts(ICAArtifacts.Config(n_components=15, ch_types=["mag"]))(rec)
    step = out.provenance["steps"][-1]
    assert step["n_components"] == 15
    assert out.ch_names == rec.ch_names and np.isfinite(out.get_data()).all()
    types = np.array(rec.ch_types)
    np.testing.assert_array_equal(
        out.get_data()[types == "grad"], rec.get_data()[types == "grad"]
    )  # not fitted, not touched
    changed = bool(np.abs(out.get_data() - rec.get_data()).max() > 0)
    assert changed == bool(step["excluded"])
