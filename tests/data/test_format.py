"""The prepared-dataset format: round trips, atomic writes, clear errors on damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ephys_data.format import (
    DatasetFormatError,
    PreparedDataset,
    Session,
    iter_sessions,
    read_manifest,
    session_dir,
    write_manifest,
    write_session,
)
from ephys_data.recording import Recording, to_physical
from ephys_data.stages.scaling import Clip, MuLaw, Normalize


def recording(name="sub-01_task-rest", n_channels=4, n_times=500, seed=0, **fields):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_channels, n_times)) * 1e-12
    return Recording.from_array(
        data,
        100.0,
        [f"M{i}" for i in range(n_channels)],
        "mag",
        name=name,
        subject="01",
        task="rest",
        units=("T",) * n_channels,
        **fields,
    )


def test_session_round_trip(tmp_path):
    labels = np.arange(500, dtype=np.int16) % 3
    rec = recording(labels=labels, label_names={1: "a", 2: "b"}, bads=("M1",))
    write_session(tmp_path, rec, {"source": "x.fif"})
    session = Session.open(session_dir(tmp_path, rec.name))
    assert session.data.dtype == np.float32
    np.testing.assert_allclose(session.data, rec.data.astype(np.float32))
    np.testing.assert_array_equal(session.labels, labels)
    meta = session.meta
    assert meta["sfreq"] == 100.0 and meta["ch_names"] == ["M0", "M1", "M2", "M3"]
    assert meta["bads"] == ["M1"] and meta["labels"]["names"] == {"1": "a", "2": "b"}
    assert meta["provenance"]["source"] == "x.fif" and meta["units"] == ["T"] * 4
    session.verify()
    assert not list(tmp_path.rglob("*.pkl"))


def test_codes_keep_their_small_integer_type(tmp_path):
    rec = MuLaw(MuLaw.Config())(recording())
    write_session(tmp_path, rec, {})
    assert Session.open(session_dir(tmp_path, rec.name)).data.dtype == np.uint8


def test_prepared_samples_map_back_to_physical_units(tmp_path):
    rec = recording(n_times=2000)
    prepared = MuLaw(MuLaw.Config(amplitude=5.0))(
        Clip(Clip.Config(k=5))(Normalize(Normalize.Config())(rec))
    )
    write_session(tmp_path, prepared, {})
    session = Session.open(session_dir(tmp_path, rec.name))
    back = to_physical(np.asarray(session.data), session.meta["transforms"])
    error = np.abs(back - rec.data).max() / np.abs(rec.data).max()
    assert error < 0.05  # 8-bit mu-law of +/-5 robust units
    assert np.corrcoef(back.ravel(), rec.data.ravel())[0, 1] > 0.999


def test_an_interrupted_write_leaves_nothing_a_reader_accepts(tmp_path, monkeypatch):
    import ephys_data.format as fmt

    def crash(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(fmt, "_dump_json", crash)
    with pytest.raises(KeyboardInterrupt):
        write_session(tmp_path, recording(), {})
    assert not session_dir(tmp_path, "sub-01_task-rest").exists()
    assert list(iter_sessions(tmp_path)) == []
    assert not [p for p in (tmp_path / "sessions").iterdir()]  # temporary folder removed


def test_rewriting_replaces_a_session_whole(tmp_path):
    write_session(tmp_path, recording(seed=0), {})
    write_session(tmp_path, recording(seed=1, n_times=300), {})
    session = Session.open(session_dir(tmp_path, "sub-01_task-rest"))
    assert session.n_times == 300
    assert len(list((tmp_path / "sessions").iterdir())) == 1


def test_truncated_and_corrupt_files_are_named(tmp_path):
    write_session(tmp_path, recording(), {})
    folder = session_dir(tmp_path, "sub-01_task-rest")
    data = folder / "data.npy"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(DatasetFormatError, match=r"data\.npy is truncated or corrupt"):
        _ = Session.open(folder).data
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match=r"meta\.json is corrupt"):
        Session.open(folder)


def test_verify_detects_changed_samples(tmp_path):
    write_session(tmp_path, recording(), {})
    folder = session_dir(tmp_path, "sub-01_task-rest")
    raw = bytearray((folder / "data.npy").read_bytes())
    raw[-1] ^= 0xFF
    (folder / "data.npy").write_bytes(bytes(raw))
    with pytest.raises(DatasetFormatError, match="hash mismatch"):
        Session.open(folder).verify()


def test_manifest_totals_and_errors(tmp_path):
    with pytest.raises(DatasetFormatError, match="not a prepared ephys dataset"):
        read_manifest(tmp_path)
    write_session(tmp_path, recording("a"), {})
    write_session(tmp_path, recording("b", n_times=300), {})
    with pytest.raises(DatasetFormatError, match="interrupted run"):
        read_manifest(tmp_path)
    manifest = write_manifest(tmp_path, {"pipeline": []})
    assert manifest["totals"]["sessions"] == 2 and manifest["totals"]["samples"] == 800
    assert manifest["totals"]["seconds"] == pytest.approx(8.0)
    assert PreparedDataset(tmp_path).names == ["a", "b"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_sessions_pickle_without_their_arrays(tmp_path):
    import pickle

    write_session(tmp_path, recording(n_times=100_000), {})
    session = Session.open(session_dir(tmp_path, "sub-01_task-rest"))
    session.data  # noqa: B018 - opens the memory map
    clone = pickle.loads(pickle.dumps(session))
    assert len(pickle.dumps(session)) < 20_000
    np.testing.assert_array_equal(clone.data[:, :10], session.data[:, :10])
