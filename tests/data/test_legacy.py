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
