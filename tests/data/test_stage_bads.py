"""Bad channels and bad segments, on synthetic and real recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ephys_data.examples import example_recording
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.bads import BadChannels, BadSegments, robust_bad_channels
from ephys_data.stages.io import Read

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "recordings"


def with_data(rec: Recording, data: np.ndarray) -> Recording:
    raw = rec.raw.copy()
    raw._data[:] = data
    return Recording.from_raw(raw, name=rec.name)


def damage(rec: Recording, noisy: list[str], flat: list[str]) -> Recording:
    """A copy with ``noisy`` channels 30 times louder and ``flat`` ones set to 0."""
    data = rec.get_data().copy()
    rng = np.random.default_rng(1)
    for name in noisy:
        i = rec.ch_names.index(name)
        data[i] += 30 * data[i].std() * rng.standard_normal(data.shape[1])
    for name in flat:
        data[rec.ch_names.index(name)] = 0.0
    return with_data(rec, data)


@pytest.fixture(scope="module")
def ctf():
    path = RECORDINGS / "ctf" / "testdata_ctf_short_discontinuous.ds"
    if not path.exists():
        pytest.skip("real recordings not available")
    return Read(Read.Config())(Recording.unloaded(path))


def test_robust_detector():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((40, 4000)) * rng.uniform(0.7, 1.4, (40, 1))
    bad, _ = robust_bad_channels(data, 100.0)
    assert not bad.any()
    data[3] *= 25
    data[7] = 0.0
    data[9] *= 0.01
    data[12, 2000:] *= 40  # noisy in the second half only
    bad, fraction = robust_bad_channels(data, 100.0, window_seconds=10.0, min_fraction=0.5)
    assert np.flatnonzero(bad).tolist() == [3, 7, 9, 12]
    assert fraction[12] == pytest.approx(0.5)
    bad, _ = robust_bad_channels(data, 100.0, window_seconds=10.0, min_fraction=0.75)
    assert np.flatnonzero(bad).tolist() == [3, 7, 9]


def test_clean_example_has_no_bad_channel():
    rec = example_recording()
    out = BadChannels(BadChannels.Config())(rec)
    assert out.bads == () and out.provenance["bad_channels"] == []
    np.testing.assert_array_equal(out.get_data(), rec.get_data())


@pytest.mark.realdata
def test_real_ctf_bad_channels_zeroed(ctf):
    names = list(ctf.ch_names)
    rec = damage(ctf, noisy=[names[10]], flat=[names[50]])
    out = BadChannels(BadChannels.Config(action="zero"))(rec)
    assert {names[10], names[50]} <= set(out.bads)
    assert len(out.bads) <= 3  # the real channels are fine
    assert out.provenance["bad_channels"] == list(out.bads)
    for name in out.bads:
        assert not out.get_data()[names.index(name)].any()
    good = [i for i, n in enumerate(names) if n not in out.bads]
    np.testing.assert_array_equal(out.get_data()[good], rec.get_data()[good])


@pytest.mark.realdata
def test_real_ctf_drop(ctf):
    names = list(ctf.ch_names)
    rec = damage(ctf, noisy=[names[3]], flat=[])
    out = BadChannels(BadChannels.Config(action="drop"))(rec)
    assert names[3] not in out.ch_names
    assert out.n_channels == rec.n_channels - len(out.provenance["bad_channels"])


def test_meg_interpolation_restores_the_signal():
    from ephys_data.examples import example_meg_recording
    from ephys_data.stages.filters import Notch

    clean = Notch(Notch.Config(line_freq=50.0))(example_meg_recording(heartbeat=False))
    target = clean.ch_names[31]
    out = BadChannels(BadChannels.Config(action="interpolate", interpolation="fast"))(
        damage(clean, noisy=[target], flat=[])
    )
    i = clean.ch_names.index(target)
    assert out.provenance["bad_channels"] == [target]
    assert out.bads == ()  # interpolated channels are good again
    assert np.corrcoef(out.get_data()[i], clean.get_data()[i])[0, 1] > 0.9


@pytest.mark.realdata
def test_real_megin_interpolation_runs(recordings):
    rec = Read(Read.Config())(Recording.unloaded(recordings / "megin/141027_cropped_90Hz_raw.fif"))
    grads = [n for n, t in zip(rec.ch_names, rec.ch_types, strict=True) if t == "grad"]
    damaged = damage(rec, noisy=[grads[20]], flat=[])
    out = BadChannels(BadChannels.Config(action="interpolate"))(damaged)
    i = rec.ch_names.index(grads[20])
    assert grads[20] in out.provenance["bad_channels"]
    assert out.bads == ()
    assert np.isfinite(out.get_data()).all()
    assert out.get_data()[i].std() < 3 * rec.get_data()[i].std()  # the added noise is gone


def test_interpolation_needs_positions():
    import mne

    rng = np.random.default_rng(0)
    data = rng.standard_normal((10, 1000)) * 1e-6
    data[2] *= 100
    raw = mne.io.RawArray(data, mne.create_info(10, 100.0, "eeg"), verbose="error")
    with pytest.raises(RecordingError, match="without sensor positions"):
        BadChannels(BadChannels.Config(action="interpolate"))(Recording.from_raw(raw, "nopos"))


@pytest.mark.realdata
def test_session_rejected_when_too_many_channels_are_bad(ctf):
    names = list(ctf.ch_names)
    rec = damage(ctf, noisy=[], flat=names[:80])
    with pytest.raises(RecordingError, match=r"session rejected, 8\d of 281 channels are bad"):
        BadChannels(BadChannels.Config())(rec)
    with pytest.raises(RecordingError, match="session rejected"):
        BadChannels(BadChannels.Config(max_bad_fraction=None, max_bad_channels=25))(rec)
    out = BadChannels(BadChannels.Config(max_bad_fraction=0.5, action="mark"))(rec)
    assert set(names[:80]) <= set(out.bads)


def test_bad_channels_from_the_file_are_kept():
    rec = example_recording()
    raw = rec.raw.copy()
    raw.info["bads"] = ["Cz"]
    out = BadChannels(BadChannels.Config(action="zero"))(Recording.from_raw(raw, name="x"))
    assert out.bads == ("Cz",)
    assert out.provenance["steps"][-1]["from_file"] == ["Cz"]
    assert not out.get_data()[out.ch_names.index("Cz")].any()


def test_bad_segments_jumps_and_flat_spans():
    rec = example_recording()
    data = rec.get_data().copy()
    data[:, 600:660] = data[:, 600:601]  # 0.3 s flat on every channel from 3.0 s
    data[7, 1400:] = 0.0  # flat for 30 % of the recording: a bad channel
    data[5, 1200:1210] += 1e-3  # a 1 mV step: jumps at 6.0 s and 6.05 s
    rec = with_data(rec, data)
    stage = BadSegments(
        BadSegments.Config(peak={"eeg": 1e-4}, flat=0.0, min_duration=0.002, zero=True)
    )
    out = stage(rec)
    bad = [a for a in out.annotations if a["description"].startswith("BAD_")]
    flat = [a for a in bad if a["description"] == "BAD_flat"]
    peak = [a for a in bad if a["description"] == "BAD_peak"]
    assert len(flat) == 1 and flat[0]["onset"] == pytest.approx(3.0, abs=0.01)
    assert flat[0]["duration"] == pytest.approx(0.3, abs=0.02)
    assert peak and all(5.99 <= a["onset"] <= 6.06 for a in peak)
    assert out.bads == (rec.ch_names[7],)
    assert not out.get_data()[:, 605:655].any()  # zeroed
    assert out.get_data()[:, 1000:1100].any()
    step = out.provenance["steps"][-1]
    assert step["n_segments"] == len(bad) and step["zeroed"]


def test_bad_segments_without_zeroing_keep_the_data():
    rec = example_recording()
    out = BadSegments(BadSegments.Config())(rec)
    np.testing.assert_array_equal(out.get_data(), rec.get_data())
    assert out.provenance["steps"][-1]["n_segments"] == 0


@pytest.mark.realdata
def test_bad_segments_with_muscle_on_real_eeg(recordings):
    rec = Read(Read.Config())(Recording.unloaded(recordings / "eeg/test.edf"))
    out = BadSegments(BadSegments.Config(muscle=True, muscle_threshold=3.0))(rec)
    step = out.provenance["steps"][-1]
    assert step["stage"] == "bad_segments" and "muscle_seconds" in step
    muscle = [a for a in out.annotations if a["description"] == "BAD_muscle"]
    assert sum(a["duration"] for a in muscle) == pytest.approx(step["muscle_seconds"])
    assert len(out.annotations) >= len(rec.annotations)


def test_muscle_needs_a_high_sampling_rate():
    with pytest.raises(RecordingError, match="before `resample`"):
        BadSegments(BadSegments.Config(muscle=True))(example_recording())
