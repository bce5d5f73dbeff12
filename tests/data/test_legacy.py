"""Importing datasets of the previous generation (pickled chunks), only when allowed."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from ephys_core.cli import app
from ephys_data.format import PreparedDataset
from ephys_data.legacy import LegacyImportError, import_legacy


def write_legacy(root, with_condition=False):
    for s, n_chunks in (("sub-1_ses-rest", 3), ("sub-2_ses-auditory", 2)):
        folder = root / s
        folder.mkdir(parents=True)
        for i in range(n_chunks):
            rows = 3 + int(with_condition)
            chunk = {
                "data": np.full((rows, 10), i, dtype=np.float64),
                "ch_names": ["a", "b", "c"],
                "ch_types": [1, 1, 2],
                "pos_2d": np.zeros((3, 2)),
                "sfreq": 100,
                "session": s,
                "bad_channels": ["b"],
            }
            np.save(folder / f"{i}.npy", chunk, allow_pickle=True)
    (root / "broken").mkdir()
    (root / "broken" / "0.npy").write_bytes(b"garbage")
    return root


def test_refuses_without_explicit_permission(tmp_path):
    with pytest.raises(LegacyImportError, match="unpickling can run arbitrary code"):
        import_legacy(write_legacy(tmp_path / "old"), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_imports_chunks_in_order_and_reports_failures(tmp_path):
    manifest = import_legacy(
        write_legacy(tmp_path / "old", True), tmp_path / "new", allow_pickle=True
    )
    assert [f["name"] for f in manifest["failures"]] == ["broken"]
    dataset = PreparedDataset(tmp_path / "new")
    session = dataset.session("sub-1_ses-rest")
    assert session.data.shape == (3, 30)
    np.testing.assert_array_equal(session.data[0, ::10], [0, 1, 2])
    np.testing.assert_array_equal(session.labels[::10], [0, 1, 2])  # the condition row
    assert session.meta["ch_types"] == ["meg", "meg", "eeg"] and session.meta["bads"] == ["b"]


def test_cli_import(tmp_path):
    old = write_legacy(tmp_path / "old")
    runner = CliRunner()
    refused = runner.invoke(app, ["data", "import-legacy", str(old), str(tmp_path / "a")])
    assert refused.exit_code == 1 and "--allow-pickle" in refused.output
    partial = runner.invoke(
        app, ["data", "import-legacy", str(old), str(tmp_path / "b"), "--allow-pickle"]
    )
    assert partial.exit_code == 3 and "imported 2 sessions" in partial.output
    info = runner.invoke(app, ["data", "info", str(tmp_path / "b")])
    assert info.exit_code == 0 and "2 sessions" in info.output and "broken" in info.output


def _chunk(**fields):
    chunk = {
        "data": np.ones((3, 10)),
        "ch_names": ["a", "b", "c"],
        "ch_types": [1, 1, 2],
        "sfreq": 100,
    }
    chunk.update(fields)
    return {k: v for k, v in chunk.items() if v is not None}


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        ([_chunk(ch_names=None)], "no 'ch_names'"),
        ([_chunk(sfreq=None)], "no 'sfreq'"),
        ([_chunk(sfreq="fast")], "'sfreq' is not a number"),
        ([_chunk(), _chunk(data=np.ones((2, 10)))], "disagree on the number of rows"),
        ([_chunk(data=np.ones((5, 10)))], "5 data rows for 3 channel names"),
        ([_chunk(data=np.ones(10))], "must be a 2-D numeric array"),
        ([_chunk(ch_types=[1, 2])], "2 channel types for 3 channel names"),
        ([_chunk(pos_2d=np.zeros((2, 2)))], "'pos_2d' has shape"),
    ],
)
def test_a_malformed_session_is_a_failure_and_the_others_are_imported(tmp_path, chunks, reason):
    old = tmp_path / "old"
    good, bad = old / "sub-1", old / "sub-2"
    good.mkdir(parents=True)
    bad.mkdir()
    np.save(good / "0.npy", _chunk(), allow_pickle=True)
    for i, chunk in enumerate(chunks):
        np.save(bad / f"{i}.npy", chunk, allow_pickle=True)
    manifest = import_legacy(old, tmp_path / "new", allow_pickle=True)
    assert [s["name"] for s in manifest["sessions"]] == ["sub-1"]
    (failure,) = manifest["failures"]
    assert failure["name"] == "sub-2" and reason in failure["error"]
    assert PreparedDataset(tmp_path / "new").session("sub-1").data.shape == (3, 10)


def test_hidden_session_folders_fail_and_leftovers_of_killed_imports_are_removed(tmp_path):
    old = write_legacy(tmp_path / "old")
    (old / ".hidden").mkdir()
    np.save(old / ".hidden" / "0.npy", _chunk(), allow_pickle=True)
    new = tmp_path / "new"
    leftover = new / "sessions" / ".sub-1_ses-rest.tmp-0badc0de"
    leftover.mkdir(parents=True)
    manifest = import_legacy(old, new, allow_pickle=True)
    assert not leftover.exists()
    failures = {f["name"]: f["error"] for f in manifest["failures"]}
    assert set(failures) == {".hidden", "broken"}
    assert "is not usable" in failures[".hidden"]
    assert not (new / "sessions" / ".hidden").exists()
    assert manifest["totals"]["sessions"] == 2
