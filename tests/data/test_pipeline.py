"""Preprocessing runs: real recordings of every format, failures isolated, resumption, scale-out."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ephys_core.cli import app
from ephys_core.errors import ConfigError
from ephys_core import get_registry
from ephys_data.format import PreparedDataset
from ephys_data.pipeline import DEFAULT_STAGES, preprocess
from ephys_data.recording import to_physical

FAST = [
    {"name": "read", "params": {"picks": ["meg"]}},
    {"name": "resample", "params": {"sfreq": 100.0}},
    {"name": "normalize"},
]


def folder_source(root):
    return {"name": "folder", "params": {"root": str(root)}}


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def meg_folder(recordings, tmp_path):
    """Five MEG recordings: four copies of the real MEGIN file and the real CTF folder.

    (A CTF ``.ds`` folder cannot be renamed: its files carry the folder's name.)
    """
    folder = tmp_path / "raw"
    folder.mkdir()
    megin = recordings / "megin" / "141027_cropped_90Hz_raw.fif"
    for s in range(1, 5):
        shutil.copy(megin, folder / f"sub-{s:02d}_task-rest_meg.fif")
    shutil.copytree(
        recordings / "ctf" / "testdata_ctf_short_discontinuous.ds",
        folder / "testdata_ctf_short_discontinuous.ds",
    )
    return folder


def test_default_pipeline_on_every_format(recordings, tmp_path):
    result = CliRunner().invoke(
        app, ["preprocess", "--input", str(recordings), "--out", str(tmp_path / "prep")]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(
        CliRunner().invoke(app, ["data", "info", str(tmp_path / "prep"), "--json"]).stdout
    )
    names = {s["name"] for s in info["sessions"]}
    assert names == {
        "ctf__test_ctf_comp_raw",
        "ctf__testdata_ctf_short_discontinuous",
        "eeg__test_bdf",
        "eeg__test_edf",
        "eeg__test_vhdr",
        "kit__MQKIT_125_2sec",
        "kit__test",
        "megin__141027_cropped_90Hz_raw",
    }
    assert info["sfreq"] == [100.0] and info["transforms"] == ["normalize", "clip"]
    assert [s["name"] for s in DEFAULT_STAGES] == [p["name"] for p in info["pipeline"]]
    by_name = {s["name"]: s for s in info["sessions"]}
    assert by_name["megin__141027_cropped_90Hz_raw"]["n_channels"] == 306
    assert by_name["kit__test"]["n_channels"] == 157
    assert by_name["eeg__test_vhdr"]["seconds"] == pytest.approx(7.9, abs=0.02)
    # the dataset loads, whatever the mix of systems
    builder = get_registry("datasets").create(
        "continuous_next_step",
        {
            "roots": [str(tmp_path / "prep")],
            "window_seconds": 0.3,
            "split": {"strategy": "time", "val": 0.2, "test": 0.2},
        },
    )
    x, y = builder.build("train")[0]
    assert np.isfinite(x).all() and x.shape[0] == builder.layout.n_channels


def test_ctf_from_raw_to_tokens_and_back(recordings, tmp_path):
    stages = [
        {"name": "read"},
        {"name": "bandpass", "params": {"l_freq": 1.0, "h_freq": 40.0}},
        {"name": "notch", "params": {"freqs": [60.0]}},
        {"name": "resample", "params": {"sfreq": 200.0}},
        {"name": "bad_channels"},
        {"name": "normalize"},
        {"name": "clip", "params": {"k": 5}},
        {"name": "mulaw", "params": {"amplitude": 5.0}},
    ]
    summary = preprocess(
        folder_source(recordings / "ctf" / "testdata_ctf_short_discontinuous.ds"),
        stages,
        tmp_path / "prep",
    )
    assert summary.count("done") == 1
    session = PreparedDataset(tmp_path / "prep").sessions()[0]
    assert session.data.dtype == np.uint8 and session.sfreq == 200.0
    assert session.meta["provenance"]["source_sha256"]
    assert [t["kind"] for t in session.meta["transforms"]] == ["normalize", "clip", "mulaw"]
    physical = to_physical(np.asarray(session.data), session.meta["transforms"])
    mag = np.array(session.meta["ch_types"]) == "mag"
    assert session.meta["units"][int(np.flatnonzero(mag)[0])] == "T"
    assert 1e-16 < np.abs(physical[mag]).max() < 1e-9  # back in tesla
    builder = get_registry("datasets").create(
        "tokens_next_step",
        {
            "roots": [str(tmp_path / "prep")],
            "window_seconds": 0.5,
            "split": {"strategy": "time", "val": 0.2, "test": 0.2},
        },
    )
    x, y = builder.build("train")[0]
    assert x.dtype == np.int64 and x.shape == (session.meta["n_channels"], 100)


def test_a_corrupt_file_is_reported_and_the_rest_succeed(meg_folder, tmp_path):
    (meg_folder / "sub-06_task-rest_meg.fif").write_bytes(
        (meg_folder / "sub-01_task-rest_meg.fif").read_bytes()[:20000]
    )
    (meg_folder / "sub-07_task-rest_meg.edf").write_bytes(b"not an edf at all")
    result = CliRunner().invoke(
        app, ["preprocess", "--input", str(meg_folder), "--out", str(tmp_path / "prep")]
    )
    assert result.exit_code == 3
    assert "5 processed, 0 already done, 2 failed" in result.output
    manifest = PreparedDataset(tmp_path / "prep").manifest
    failures = {f["name"]: f for f in manifest["failures"]}
    assert set(failures) == {"sub-06_task-rest_meg", "sub-07_task-rest_meg"}
    assert failures["sub-06_task-rest_meg"]["source"].endswith("sub-06_task-rest_meg.fif")
    assert manifest["totals"]["sessions"] == 5


def test_rerun_skips_done_sessions_and_redoes_changed_ones(meg_folder, tmp_path):
    out = tmp_path / "prep"
    first = preprocess(folder_source(meg_folder), FAST, out)
    assert first.count("done") == 5
    assert preprocess(folder_source(meg_folder), FAST, out).count("skipped") == 5
    shutil.rmtree(out / "sessions" / "sub-02_task-rest_meg")
    again = preprocess(folder_source(meg_folder), FAST, out)
    assert {r.name for r in again.results if r.status == "done"} == {"sub-02_task-rest_meg"}
    changed = [*FAST[:1], {"name": "resample", "params": {"sfreq": 50.0}}, FAST[2]]
    redone = preprocess(folder_source(meg_folder), changed, out)
    assert redone.count("done") == 5
    assert PreparedDataset(out).session("sub-01_task-rest_meg").sfreq == 50.0


def test_killed_run_resumes_to_identical_output(meg_folder, tmp_path):
    clean = tmp_path / "clean"
    preprocess(folder_source(meg_folder), FAST, clean)
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "preprocessing": {
                    "source": folder_source(meg_folder),
                    "stages": FAST,
                    "out_dir": str(tmp_path / "out"),
                }
            }
        )
    )
    command = [
        sys.executable,
        "-c",
        "from ephys_core.cli import main; main()",
        "-q",
        "preprocess",
        str(config),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sessions = tmp_path / "out" / "sessions"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        done = [p for p in sessions.glob("sub-*")] if sessions.is_dir() else []
        if done:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    written = [p for p in sessions.iterdir() if not p.name.startswith(".")]
    assert all((p / "meta.json").is_file() for p in written)  # nothing half-written is visible
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for leftover in sessions.iterdir():
        assert not leftover.name.startswith("."), "temporary folders must not remain"
    assert tree_bytes(tmp_path / "out") == tree_bytes(clean)


def test_two_workers_and_dask_give_the_same_dataset(meg_folder, tmp_path):
    preprocess(folder_source(meg_folder), FAST, tmp_path / "one")
    preprocess(folder_source(meg_folder), FAST, tmp_path / "two", workers=2)
    assert tree_bytes(tmp_path / "two") == tree_bytes(tmp_path / "one")
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        preprocess(
            folder_source(meg_folder), FAST, tmp_path / "dask", scheduler=cluster.scheduler_address
        )
    assert tree_bytes(tmp_path / "dask") == tree_bytes(tmp_path / "one")


def test_bad_pipelines_are_refused_before_anything_runs(meg_folder, tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"stages\[1\]\.name: unknown preprocessing stage "
        r"'bandpas'; did you mean 'bandpass'",
    ):
        preprocess(folder_source(meg_folder), [{"name": "read"}, {"name": "bandpas"}], tmp_path)
    with pytest.raises(ConfigError, match=r"stages\[0\]\.params\.lfreq: unknown key"):
        preprocess(folder_source(meg_folder), [{"name": "read", "params": {"lfreq": 1}}], tmp_path)
    with pytest.raises(ConfigError, match="must start with a stage that reads"):
        preprocess(folder_source(meg_folder), [{"name": "normalize"}], tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        preprocess(folder_source(tmp_path / "missing"), FAST, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_needs_a_config_or_input(tmp_path):
    result = CliRunner().invoke(app, ["preprocess"])
    assert result.exit_code == 1 and "--input PATH and --out DIR" in result.output
    config = tmp_path / "run.yaml"
    config.write_text("model: gpt2meg\n")
    result = CliRunner().invoke(app, ["preprocess", str(config)])
    assert (
        result.exit_code == 1
        and "preprocessing: `ephys preprocess` needs this section" in result.output
    )
