"""The prepared-dataset format: round trips, atomic writes, clear errors on damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ephys_core.cli import app
from ephys_data.format import (
    FORMAT,
    DatasetFormatError,
    FolderLockedError,
    PreparedDataset,
    Session,
    SessionNameError,
    clean_leftovers,
    folder_lock,
    iter_sessions,
    meta_digest,
    read_manifest,
    session_dir,
    write_manifest,
    write_session,
)
from ephys_data.recording import Recording
from ephys_data.stages.scaling import Clip, MuLaw, Normalize
from ephys_data.transforms import to_physical


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


def rewrite_meta(folder, digest=True, **changes):
    """Change a sidecar by hand (with a matching digest, as a crafted file would have)."""
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    if digest:
        meta["meta_sha256"] = meta_digest(meta)
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def as_version_1(folder):
    """Turn a session into what the previous format wrote (no digests, no non-finite count)."""
    meta = json.loads((folder / "meta.json").read_text())
    meta["format"] = "ephys-session/1"
    for key in ("meta_sha256", "non_finite", "coil_x_3d"):
        meta.pop(key, None)
    if meta.get("labels"):
        meta["labels"].pop("sha256", None)
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "name", ["../escape", "a/b", "/absolute", ".hidden", "", ".", "..", "a\\b", "x\x00y"]
)
def test_session_names_must_be_plain_folder_names(tmp_path, name):
    root = tmp_path / "root"
    with pytest.raises(SessionNameError, match="is not usable"):
        write_session(root, recording(name=name), {})
    with pytest.raises(SessionNameError):
        session_dir(root, name)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing written anywhere


def test_sidecars_record_hashes_of_everything_and_the_manifest_covers_them(tmp_path):
    labels = np.arange(500, dtype=np.int16) % 3
    write_session(tmp_path, recording(labels=labels), {})
    folder = session_dir(tmp_path, "sub-01_task-rest")
    session = Session.open(folder)
    assert session.meta["format"] == FORMAT == "ephys-session/2"
    assert session.meta["meta_sha256"] == meta_digest(session.meta)
    assert len(session.meta["labels"]["sha256"]) == 64
    manifest = write_manifest(tmp_path)
    assert manifest["sessions"][0]["meta_sha256"] == session.digest
    session.verify()
    # labels are verified too
    raw = bytearray((folder / "labels.npy").read_bytes())
    raw[-1] ^= 0x01
    (folder / "labels.npy").write_bytes(bytes(raw))
    with pytest.raises(DatasetFormatError, match=r"labels\.npy: content hash mismatch"):
        Session.open(folder).verify()


def test_an_edited_sidecar_is_refused_with_its_name(tmp_path):
    write_session(tmp_path, recording(), {})
    write_manifest(tmp_path)
    folder = session_dir(tmp_path, "sub-01_task-rest")
    rewrite_meta(folder, digest=False, sfreq=200.0)
    with pytest.raises(DatasetFormatError, match=r"meta\.json does not match its digest") as err:
        Session.open(folder)
    assert "\n" not in str(err.value)
    result = CliRunner().invoke(app, ["data", "verify", str(tmp_path)])
    assert result.exit_code == 1 and "does not match its digest" in result.output
    assert "Traceback" not in result.output


def test_a_session_replaced_after_the_manifest_is_noticed(tmp_path):
    write_session(tmp_path, recording(seed=0), {})
    write_manifest(tmp_path)
    # a consistent sidecar, but not the one the manifest covers
    rewrite_meta(session_dir(tmp_path, "sub-01_task-rest"), task="edited")
    with pytest.raises(DatasetFormatError, match="does not match the digest the manifest records"):
        PreparedDataset(tmp_path).session("sub-01_task-rest")
    write_manifest(tmp_path)  # a rerun rebuilds the manifest
    assert PreparedDataset(tmp_path).session("sub-01_task-rest").meta["task"] == "edited"


def test_version_1_sessions_are_still_read_and_verified(tmp_path):
    labels = np.arange(500, dtype=np.int16) % 3
    rec = recording(labels=labels)
    write_session(tmp_path, rec, {})
    folder = session_dir(tmp_path, rec.name)
    as_version_1(folder)
    write_manifest(tmp_path)
    session = PreparedDataset(tmp_path).session(rec.name)
    assert session.meta["format"] == "ephys-session/1" and session.non_finite is None
    np.testing.assert_allclose(session.data, rec.data.astype(np.float32))
    session.verify()
    assert read_manifest(tmp_path)["sessions"][0]["meta_sha256"] == meta_digest(session.meta)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("data_file", "../../outside.npy"),
        ("data_file", "/etc/hostname"),
        ("data_file", "sub/data.npy"),
        ("labels", {"file": "../labels.npy", "names": {}}),
        ("labels", {"file": "/tmp/labels.npy", "names": {}}),
    ],
)
def test_sidecar_file_references_stay_inside_the_session(tmp_path, key, value):
    (tmp_path / "outside.npy").write_bytes(b"")
    write_session(tmp_path, recording(labels=np.zeros(500, np.int16)), {})
    folder = session_dir(tmp_path, "sub-01_task-rest")
    rewrite_meta(folder, **{key: value})
    with pytest.raises(DatasetFormatError, match="not a plain file name inside the session"):
        Session.open(folder)


def test_malformed_sidecars_and_manifests_give_one_line_errors(tmp_path):
    write_session(tmp_path, recording(), {})
    folder = session_dir(tmp_path, "sub-01_task-rest")
    good = (folder / "meta.json").read_text()
    (folder / "meta.json").write_text("[1, 2]")
    with pytest.raises(DatasetFormatError, match="expected a JSON object, got list"):
        Session.open(folder)
    meta = json.loads(good)
    del meta["n_times"]
    meta["meta_sha256"] = meta_digest(meta)
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetFormatError, match=r"missing or mistyped fields n_times \(missing\)"):
        Session.open(folder)
    for changes, expected in (
        ({"sfreq": 0}, "sfreq 0 is not positive"),
        ({"dtype": "nonsense"}, "dtype 'nonsense' is not a numpy type"),
        ({"pos_3d": [[0.0, 0.0, 1.0]]}, "pos_3d must be 4 rows of 3 numbers"),
        ({"units": ["T"]}, "units must list one entry per channel"),
    ):
        rewrite_meta(folder, **{**json.loads(good), **changes})
        with pytest.raises(DatasetFormatError, match=expected):
            Session.open(folder)
    (folder / "meta.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(DatasetFormatError, match="is corrupt"):
        Session.open(folder)
    (folder / "meta.json").write_text(good)
    runner = CliRunner()
    for text, expected in (
        ("[]", "expected a JSON object"),
        ('{"format": "ephys-dataset/1"}', "expected `sessions`"),
        (
            json.dumps(
                {
                    "format": "ephys-dataset/1",
                    "sessions": [{"name": "../../x"}],
                    "totals": {"sessions": 1, "samples": 1, "seconds": 1.0, "hours": 0.0},
                }
            ),
            "is not usable",
        ),
    ):
        (tmp_path / "manifest.json").write_text(text)
        with pytest.raises(DatasetFormatError, match=expected):
            PreparedDataset(tmp_path)
        for command in ("info", "verify"):
            result = runner.invoke(app, ["data", command, str(tmp_path)])
            assert result.exit_code == 1 and expected in result.output, result.output
            assert len(result.output.strip().splitlines()) <= 2  # one (wrapped) line


def test_an_empty_data_file_is_a_format_error_not_an_abort(tmp_path):
    write_session(tmp_path, recording(), {})
    write_manifest(tmp_path)
    folder = session_dir(tmp_path, "sub-01_task-rest")
    (folder / "data.npy").write_bytes(b"")
    with pytest.raises(DatasetFormatError, match=r"data\.npy is truncated or corrupt"):
        _ = Session.open(folder).data
    result = CliRunner().invoke(app, ["data", "verify", str(tmp_path)])
    assert result.exit_code == 1 and "Aborted" not in result.output
    assert "data.npy is truncated or corrupt" in result.output
    (folder / "data.npy").unlink()
    (folder / "data.npy").mkdir()  # a folder where the file should be
    with pytest.raises(DatasetFormatError, match=r"data\.npy is truncated or corrupt"):
        _ = Session.open(folder).data


def test_non_finite_samples_are_counted_in_the_sidecar(tmp_path):
    rec = recording()
    data = rec.data.copy()
    data[1, 10:15] = np.nan
    data[2, 7] = np.inf
    write_session(tmp_path, rec.with_data(data), {})
    assert Session.open(session_dir(tmp_path, rec.name)).non_finite == 6
    write_session(tmp_path, recording(name="clean"), {})
    assert Session.open(session_dir(tmp_path, "clean")).non_finite == 0


def test_a_per_channel_field_of_the_wrong_length_is_refused(tmp_path):
    from ephys_data.recording import RecordingError

    with pytest.raises(RecordingError, match="pos_3d has 3 entries for 4 channels"):
        write_session(tmp_path, recording().replace(pos_3d=np.ones((3, 3))), {})


def test_the_folder_lock_is_exclusive_and_leftovers_are_recognised(tmp_path):
    with folder_lock(tmp_path) as locked:
        assert locked
        with pytest.raises(FolderLockedError, match=f"{tmp_path} is being written by another run"):
            with folder_lock(tmp_path):
                pass
    with folder_lock(tmp_path):  # released
        pass
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    leftovers = [
        sessions / ".sub-01.tmp-0123abcd",
        sessions / ".sub-01.old-0123abcd",
        tmp_path / ".manifest.json.tmp-0123abcd",
    ]
    leftovers[0].mkdir()
    leftovers[1].mkdir()
    leftovers[2].write_text("{")
    kept = [sessions / ".DS_Store", sessions / "sub-02", tmp_path / ".lock"]
    kept[0].write_text("x")
    kept[1].mkdir()
    assert sorted(clean_leftovers(tmp_path)) == sorted(
        str(p.relative_to(tmp_path)) for p in leftovers
    )
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)
