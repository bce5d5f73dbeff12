"""Maxwell filtering (SSS / tSSS) of MEGIN data."""

from __future__ import annotations

import numpy as np
import pytest

from ephys_data.examples import example_meg_recording
from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.io import Read
from ephys_data.stages.maxwell import Maxwell, is_megin


def mag_power(rec: Recording, freq: float) -> float:
    mags = [i for i, t in enumerate(rec.ch_types) if t == "mag"]
    data = rec.get_data()[mags]
    spectrum = np.abs(np.fft.rfft(data, axis=1)) ** 2
    freqs = np.fft.rfftfreq(data.shape[1], 1 / rec.sfreq)
    return float(spectrum[:, np.argmin(np.abs(freqs - freq))].mean())


def test_sss_removes_external_interference_and_keeps_the_brain():
    rec = example_meg_recording(seconds=4.0, sfreq=200.0, heartbeat=False)
    out = Maxwell(Maxwell.Config())(rec)
    assert out.ch_names == rec.ch_names and out.n_times == rec.n_times
    assert mag_power(out, 50.0) < 0.01 * mag_power(rec, 50.0)  # the uniform 50 Hz field
    assert 0.5 < mag_power(out, 10.0) / mag_power(rec, 10.0) < 1.5  # the 10 Hz brain rhythm
    step = out.provenance["steps"][-1]
    assert step["stage"] == "maxwell" and step["origin"] == "auto"
    with pytest.raises(RecordingError, match="Maxwell filtering failed"):
        Maxwell(Maxwell.Config())(out)  # SSS cannot be applied twice


@pytest.mark.realdata
@pytest.mark.parametrize("st_duration", [None, 5.0])
def test_real_megin(recordings, st_duration):
    rec = Read(Read.Config())(Recording.unloaded(recordings / "megin/141027_cropped_90Hz_raw.fif"))
    assert is_megin(rec.raw.info)
    out = Maxwell(Maxwell.Config(st_duration=st_duration))(rec)
    assert out.ch_names == rec.ch_names and out.sfreq == rec.sfreq
    assert np.isfinite(out.get_data()).all()
    change = np.abs(out.get_data() - rec.get_data()).max()
    assert change > 1e-3 * np.abs(rec.get_data()).max()
    step = out.provenance["steps"][-1]
    assert step["st_duration"] == st_duration
    assert step["coord_frame"] == "meg"  # the file has no device-to-head transform
    assert set(step["noisy"]) | set(step["flat"]) <= set(step["bads_reconstructed"])


@pytest.mark.realdata
def test_non_megin_data_is_refused(recordings):
    rec = Read(Read.Config())(Recording.unloaded(recordings / "kit/test.sqd"))
    assert not is_megin(rec.raw.info)
    with pytest.raises(RecordingError, match="MEGIN/Elekta/Neuromag MEG recordings only"):
        Maxwell(Maxwell.Config())(rec)


def test_eeg_is_refused_and_missing_site_files_are_reported(tmp_path):
    from ephys_data.examples import example_recording

    with pytest.raises(RecordingError, match="MEGIN"):
        Maxwell(Maxwell.Config())(example_recording())
    rec = example_meg_recording(seconds=2.0, sfreq=100.0)
    with pytest.raises(RecordingError, match="calibration file .*sss_cal.dat does not exist"):
        Maxwell(Maxwell.Config(calibration=tmp_path / "sss_cal.dat"))(rec)
