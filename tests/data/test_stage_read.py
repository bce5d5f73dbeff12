"""The `read` stage on every real recording format, and its errors on bad input."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ephys_data.recording import Recording, RecordingError
from ephys_data.stages.io import Read, file_digest, stim_code

ALL_TYPES = ["meg", "ref_meg", "eeg", "eog", "ecg", "emg", "stim", "misc"]

# channels (as MNE reads them), sampling frequency, length in seconds: the README's table
TABLE = {
    "ctf/testdata_ctf_short_discontinuous.ds": (
        {"mag": 273, "ref_meg": 28, "eeg": 8, "misc": 44, "stim": 3},
        1200.0,
        2.0,
    ),
    "ctf/test_ctf_comp_raw.fif": ({"mag": 274, "ref_meg": 29, "misc": 35, "stim": 2}, 480.0, 0.5),
    "megin/141027_cropped_90Hz_raw.fif": ({"mag": 102, "grad": 204}, 90.0, 10.0),
    "kit/MQKIT_125_2sec.con": ({"mag": 125, "ref_meg": 3, "misc": 64, "stim": 1}, 1000.0, 2.0),
    "kit/test.sqd": ({"mag": 157, "ref_meg": 3, "misc": 32, "stim": 1}, 1000.0, 2.0),
    "eeg/test.edf": ({"eeg": 138, "stim": 1}, 512.0, 6.0),
    "eeg/test.bdf": ({"eeg": 72, "stim": 1}, 2048.0, 1.0),
    "eeg/test.vhdr": ({"eeg": 26, "misc": 6}, 1000.0, 7.9),
}

pytestmark = pytest.mark.realdata


def read(path: Path, **params) -> Recording:
    return Read(Read.Config(**params))(Recording.unloaded(path))


@pytest.mark.parametrize("relative", sorted(TABLE))
def test_every_format_reads_with_the_documented_channels(recordings, relative):
    counts, sfreq, seconds = TABLE[relative]
    rec = read(recordings / relative, picks=ALL_TYPES, compensation_grade=None)
    assert rec.state == "mne"
    assert dict(Counter(rec.ch_types)) == counts
    assert rec.sfreq == sfreq
    assert rec.duration == pytest.approx(seconds, abs=0.01)
    assert rec.n_channels == len(rec.ch_names) == rec.get_data().shape[0]
    assert np.isfinite(rec.get_data()).all()


@pytest.mark.parametrize("relative", sorted(TABLE))
def test_default_keeps_meg_and_eeg_and_records_the_source_digest(recordings, relative):
    path = recordings / relative
    counts, sfreq, _ = TABLE[relative]
    rec = read(path)
    expected = {t: n for t, n in counts.items() if t in ("mag", "grad", "eeg")}
    assert dict(Counter(rec.ch_types)) == expected  # no reference, stimulus or misc channels
    assert rec.sfreq == sfreq
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for file in files:
        if path.is_dir():
            h.update(file.relative_to(path).as_posix().encode() + b"\0")
        h.update(file.read_bytes())
    assert rec.provenance["source_sha256"] == h.hexdigest()
    assert rec.provenance["source_bytes"] == sum(f.stat().st_size for f in files)
    assert rec.provenance["steps"][0]["stage"] == "read"


def test_ctf_compensation_is_applied_before_reference_channels_are_dropped(recordings):
    import mne

    path = recordings / "ctf/testdata_ctf_short_discontinuous.ds"
    rec = read(path, picks=["meg"])
    assert rec.provenance["steps"][0]["compensation"] == {"from": 0, "to": 3}
    reference = mne.io.read_raw_ctf(path, preload=True, verbose="error")
    reference.apply_gradient_compensation(3, verbose="error")
    reference.pick("mag")
    np.testing.assert_allclose(rec.get_data(), reference.get_data(), rtol=0, atol=1e-20)
    uncompensated = read(path, picks=["meg"], compensation_grade=None)
    assert not np.allclose(uncompensated.get_data(), rec.get_data(), rtol=0, atol=1e-16)


def test_stimulus_events_become_annotations(recordings):
    import mne

    path = recordings / "kit/test.sqd"
    rec = read(path)
    assert "stim" not in rec.ch_types
    raw = mne.io.read_raw_kit(path, preload=True, verbose="error")
    events = mne.find_events(
        raw,
        stim_channel="STI 014",
        shortest_event=1,
        consecutive=True,
        initial_event=True,
        verbose="error",
    )
    assert len(events) > 0
    stim = [a for a in rec.annotations if a["description"].startswith("STI 014/")]
    assert [stim_code(a["description"]) for a in stim] == events[:, 2].tolist()
    samples = [round(a["onset"] * rec.sfreq) for a in stim]
    assert samples == (events[:, 0] - raw.first_samp).tolist()
    assert rec.provenance["steps"][0]["stim_events"] == {"STI 014": len(events)}


def test_file_annotations_are_kept_beside_stimulus_events(recordings):
    rec = read(recordings / "eeg/test.edf")
    descriptions = [a["description"] for a in rec.annotations]
    assert {"start", "type A", "type B"} <= set(descriptions)
    assert any(d.startswith("Status/") for d in descriptions)
    assert all(0 <= a["onset"] <= rec.duration for a in rec.annotations)


def test_channel_types_are_set_before_picking(recordings):
    path = recordings / "ctf/testdata_ctf_short_discontinuous.ds"
    rec = read(path, picks=["meg", "eog", "ecg"], channel_types={"EEG057": "ecg", "EEG058": "eog"})
    assert Counter(rec.ch_types) == {"mag": 273, "ecg": 1, "eog": 1}
    assert rec.ch_types[rec.ch_names.index("EEG057")] == "ecg"
    with pytest.raises(RecordingError, match="lacks: EEG999"):
        read(path, channel_types={"EEG999": "eog"})


def test_crop(recordings):
    rec = read(recordings / "megin/141027_cropped_90Hz_raw.fif", tmin=2.0, tmax=3.0)
    assert rec.n_times == 91
    with pytest.raises(RecordingError, match="cannot crop"):
        read(recordings / "megin/141027_cropped_90Hz_raw.fif", tmin=30.0)


def test_missing_file(tmp_path):
    with pytest.raises(RecordingError, match=r"nothere\.fif does not exist"):
        read(tmp_path / "nothere.fif")


def test_unknown_extension(tmp_path):
    path = tmp_path / "recording.xyz"
    path.write_bytes(b"not a recording")
    with pytest.raises(RecordingError, match=r"recording\.xyz: unknown recording format \.xyz"):
        read(path)


def test_truncated_fif(recordings, tmp_path):
    path = tmp_path / "truncated_raw.fif"
    shutil.copy(recordings / "megin/141027_cropped_90Hz_raw.fif", path)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(int(size * 0.4))
    with pytest.raises(RecordingError, match=r"truncated_raw\.fif: the file is truncated"):
        read(path)


def test_garbage_with_a_known_extension(tmp_path):
    path = tmp_path / "garbage_raw.fif"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(RecordingError, match=r"garbage_raw\.fif: the file is truncated"):
        read(path)


def test_no_channel_of_the_requested_types(recordings):
    with pytest.raises(RecordingError, match="no channels of the types meg"):
        read(recordings / "eeg/test.bdf", picks=["meg"])


def test_unknown_stimulus_channel(recordings):
    with pytest.raises(RecordingError, match="STI 101"):
        read(recordings / "kit/test.sqd", stim_channels=["STI 101"])


def test_example_input_events(tmp_path):
    stage = Read(Read.Config())
    rec = stage(stage.example_input(tmp_path))
    assert [(a["description"], a["onset"]) for a in rec.annotations] == [
        ("STI 014/1", 1.0),
        ("STI 014/2", 4.5),
        ("STI 014/1", 7.5),
    ]
    assert set(rec.ch_types) == {"eeg"}


def test_folder_digest_changes_with_content(tmp_path):
    folder = tmp_path / "rec.ds"
    folder.mkdir()
    (folder / "a.meg4").write_bytes(b"abc")
    (folder / "b.res4").write_bytes(b"def")
    first = file_digest(folder)
    (folder / "b.res4").write_bytes(b"deg")
    second = file_digest(folder)
    assert first[1] == second[1] == 6
    assert first[0] != second[0]
