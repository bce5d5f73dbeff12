"""Band-pass, notch and resample stages; the CTF pipeline end to end on real data."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ephys_data.examples import example_recording
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.bads import BadChannels
from ephys_data.stages.filters import BandPass, Notch, Resample, resample_labels
from ephys_data.stages.io import Read


def power_at(rec: Recording, freq: float) -> float:
    """Mean spectral power of all channels at ``freq`` Hz."""
    data = rec.get_data()
    spectrum = np.abs(np.fft.rfft(data * np.hanning(data.shape[1]), axis=1)) ** 2
    freqs = np.fft.rfftfreq(data.shape[1], 1 / rec.sfreq)
    return float(spectrum[:, np.argmin(np.abs(freqs - freq))].mean())


def impulse(sfreq: float = 200.0, n: int = 2001) -> Recording:
    import mne

    data = np.zeros((1, n))
    data[0, n // 2] = 1e-5
    raw = mne.io.RawArray(data, mne.create_info(["Cz"], sfreq, "eeg"), verbose="error")
    return Recording.from_raw(raw, name="impulse")


@pytest.fixture(scope="module")
def example():
    return example_recording()


def test_bandpass_keeps_the_band_and_removes_the_rest(example):
    out = BandPass(BandPass.Config(l_freq=5.0, h_freq=30.0))(example)
    assert power_at(out, 10.0) > 0.7 * power_at(example, 10.0)  # alpha in the band
    assert power_at(out, 50.0) < 1e-3 * power_at(example, 50.0)  # line noise above it
    assert power_at(out, 1.0) < 0.05 * power_at(example, 1.0)
    assert out.provenance["steps"][-1]["stage"] == "bandpass"
    assert out.n_times == example.n_times and out.ch_names == example.ch_names


@pytest.mark.parametrize("method", ["fir", "iir"])
def test_minimum_phase_is_causal_and_zero_phase_is_not(method):
    rec = impulse()
    middle = rec.n_times // 2
    causal = BandPass(BandPass.Config(l_freq=1.0, h_freq=40.0, method=method, phase="minimum"))(
        rec
    ).get_data()[0]
    acausal = BandPass(BandPass.Config(l_freq=1.0, h_freq=40.0, method=method, phase="zero"))(
        rec
    ).get_data()[0]
    peak = np.abs(acausal).max()
    assert np.abs(causal[:middle]).max() < 1e-6 * peak  # nothing before the impulse
    assert np.abs(acausal[:middle]).max() > 1e-3 * peak  # symmetric response


def test_mne_warnings_are_logged_once_not_raised(caplog):
    import logging

    short = impulse(n=300)  # shorter than the filter
    with caplog.at_level(logging.WARNING, logger="ephys"):
        BandPass(BandPass.Config(l_freq=0.5, h_freq=40.0))(short)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("ephys.data")]
    assert len(messages) == 1 and messages[0].startswith("impulse: filter_length")


def test_bandpass_config_and_nyquist_errors(example):
    with pytest.raises(ValidationError, match="below h_freq"):
        BandPass.Config(l_freq=40.0, h_freq=10.0)
    with pytest.raises(ValidationError, match="set l_freq, h_freq or both"):
        BandPass.Config(l_freq=None, h_freq=None)
    with pytest.raises(RecordingError, match="Nyquist"):
        BandPass(BandPass.Config(l_freq=1.0, h_freq=120.0))(example)
    high_pass = BandPass(BandPass.Config(l_freq=1.0, h_freq=None))(example)
    assert power_at(high_pass, 50.0) > 0.5 * power_at(example, 50.0)


def test_notch_frequencies():
    stage = Notch(Notch.Config(line_freq=50.0))
    assert stage.frequencies(1000.0) == [
        50.0,
        100.0,
        150.0,
        200.0,
        250.0,
        300.0,
        350.0,
        400.0,
        450.0,
    ]
    assert stage.frequencies(200.0) == [50.0]
    assert Notch(Notch.Config(line_freq=60.0, harmonics=False)).frequencies(1000.0) == [60.0]
    assert Notch(Notch.Config(freqs=[50.0, 150.0])).frequencies(200.0) == [50.0]


def test_notch_removes_line_noise(example):
    out = Notch(Notch.Config(line_freq=50.0))(example)
    assert power_at(out, 50.0) < 0.01 * power_at(example, 50.0)
    assert power_at(out, 10.0) == pytest.approx(power_at(example, 10.0), rel=0.05)
    assert out.provenance["steps"][-1]["freqs"] == [50.0]


def test_notch_line_frequency_from_the_file(example):
    with pytest.raises(RecordingError, match="power-line frequency"):
        Notch(Notch.Config(line_freq="auto"))(example)
    raw = example.raw.copy()
    raw.info["line_freq"] = 50.0
    out = Notch(Notch.Config(line_freq="auto"))(Recording.from_raw(raw, name="x"))
    assert power_at(out, 50.0) < 0.01 * power_at(example, 50.0)


def test_resample_mne_with_labels_and_annotations(example):
    labels = np.zeros(example.n_times, dtype=np.int16)
    labels[400:1000] = 3  # 2.0 s to 5.0 s at 200 Hz
    raw = example.raw.copy()
    raw.annotations.append(2.0, 0.5, "BAD_x")
    rec = Recording.from_raw(raw, name="x").replace(labels=labels, label_names={3: "three"})
    out = Resample(Resample.Config(sfreq=50.0))(rec)
    assert out.sfreq == 50.0 and out.n_times == 500
    assert out.labels.dtype == np.int16 and len(out.labels) == 500
    assert np.flatnonzero(out.labels == 3).tolist() == list(range(100, 250))
    assert out.annotations == ({"onset": 2.0, "duration": 0.5, "description": "BAD_x"},)
    assert out.label_names == {3: "three"}


def test_resample_array_state(example):
    rec = example.with_data(example.get_data())
    out = Resample(Resample.Config(sfreq=100.0))(rec)
    assert out.state == "array" and out.sfreq == 100.0 and out.n_times == 1000
    assert power_at(out, 10.0) == pytest.approx(power_at(example, 10.0) / 4, rel=0.2)
    codes = rec.with_transform(
        np.zeros((rec.n_channels, rec.n_times), np.uint8),
        {"kind": "mulaw", "mu": 255, "amplitude": 1.0},
    )
    with pytest.raises(RecordingError, match="mu-law"):
        Resample(Resample.Config(sfreq=100.0))(codes)


def test_resample_labels_nearest():
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 0], dtype=np.int16)
    assert resample_labels(labels, 8.0, 4.0, 4).tolist() == [0, 1, 2, 0]
    # ties (output samples half-way between two inputs) take the later input sample
    assert resample_labels(labels, 8.0, 16.0, 16).tolist() == [
        0,
        0,
        0,
        1,
        1,
        1,
        1,
        2,
        2,
        2,
        2,
        0,
        0,
        0,
        0,
        0,
    ]


@pytest.mark.realdata
@pytest.mark.parametrize(
    "relative",
    [
        "ctf/test_ctf_comp_raw.fif",
        "megin/141027_cropped_90Hz_raw.fif",
        "kit/MQKIT_125_2sec.con",
        "kit/test.sqd",
        "eeg/test.edf",
        "eeg/test.bdf",
        "eeg/test.vhdr",
    ],
)
def test_filters_on_every_real_recording(recordings, relative):
    rec = Read(Read.Config())(Recording.unloaded(recordings / relative))
    target = 60.0 if rec.sfreq < 200 else 100.0
    h_freq = min(40.0, rec.sfreq / 2 - 5)
    for stage in (
        BandPass(BandPass.Config(l_freq=1.0, h_freq=h_freq)),
        Notch(Notch.Config(line_freq=50.0)),
        Resample(Resample.Config(sfreq=target)),
    ):
        rec = stage(rec)
    assert rec.sfreq == target
    assert np.isfinite(rec.get_data()).all()
    assert [s["stage"] for s in rec.provenance["steps"]] == [
        "read",
        "bandpass",
        "notch",
        "resample",
    ]


@pytest.mark.realdata
def test_ctf_pipeline_end_to_end(recordings):
    source = recordings / "ctf/testdata_ctf_short_discontinuous.ds"
    rec = Recording.unloaded(source)
    stages = [
        Read(Read.Config()),
        BandPass(BandPass.Config(l_freq=1.0, h_freq=40.0, phase="minimum")),
        Notch(Notch.Config(line_freq=60.0)),
        Resample(Resample.Config(sfreq=100.0)),
        BadChannels(BadChannels.Config(action="zero")),
    ]
    for stage in stages:
        before = rec.fingerprint()
        out = stage(rec)
        assert rec.fingerprint() == before  # the input is never modified
        rec = out
    assert rec.sfreq == 100.0
    assert rec.n_times == round(2402 * 100 / 1200)
    assert rec.ch_types.count("mag") == 273 and rec.ch_types.count("eeg") == 8
    assert np.isfinite(rec.get_data()).all()
    assert [s["stage"] for s in rec.provenance["steps"]] == [
        "read",
        "bandpass",
        "notch",
        "resample",
        "bad_channels",
    ]
    assert rec.provenance["source"] == str(source)
    assert set(rec.bads) == set(rec.provenance["bad_channels"])
    for name in rec.bads:
        assert not rec.get_data()[rec.ch_names.index(name)].any()
