"""Preprocessing runs: real recordings of every format, failures isolated, resumption, scale-out."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ephys_core import get_registry
from ephys_core.cli import app
from ephys_core.errors import ConfigError
from ephys_data.format import FolderLockedError, PreparedDataset, folder_lock
from ephys_data.pipeline import DEFAULT_STAGES, preprocess
from ephys_data.sources.folder import Folder
from ephys_data.transforms import to_physical

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
    # a damaged sidecar is prepared again
    meta = out / "sessions" / "sub-04_task-rest_meg" / "meta.json"
    meta.write_text(meta.read_text().replace('"task": "rest"', '"task": "edited"'))
    repaired = preprocess(folder_source(meg_folder), FAST, out)
    assert {r.name for r in repaired.results if r.status == "done"} == {"sub-04_task-rest_meg"}
    assert PreparedDataset(out).session("sub-04_task-rest_meg").meta["task"] == "rest"
    # a changed source file is redone by the same pipeline
    changed_file = meg_folder / "sub-03_task-rest_meg.fif"
    changed_file.write_bytes(changed_file.read_bytes())
    os.utime(changed_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    touched = preprocess(folder_source(meg_folder), FAST, out)
    assert {r.name for r in touched.results if r.status == "done"} == {"sub-03_task-rest_meg"}
    # another pipeline is refused before anything runs, unless mixing is allowed
    changed = [*FAST[:1], {"name": "resample", "params": {"sfreq": 50.0}}, FAST[2]]
    before = tree_bytes(out)
    with pytest.raises(ConfigError, match=r"holds 5 session\(s\) prepared with another pipeline"):
        preprocess(folder_source(meg_folder), changed, out)
    assert tree_bytes(out) == before
    redone = preprocess(folder_source(meg_folder), changed, out, mix_pipelines=True)
    assert redone.count("done") == 5
    assert PreparedDataset(out).session("sub-01_task-rest_meg").sfreq == 50.0
    assert redone.manifest["mixed"] is False  # every session was redone by the new pipeline


def _run_command(config: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from ephys_core.cli import main; main()",
        "-q",
        "preprocess",
        str(config),
    ]


def _config(tmp_path: Path, meg_folder: Path, out: Path, name: str) -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        json.dumps(
            {
                "preprocessing": {
                    "source": folder_source(meg_folder),
                    "stages": FAST,
                    "out_dir": str(out),
                }
            }
        )
    )
    return config


def test_killed_run_resumes_to_identical_output(meg_folder, tmp_path):
    # both runs are made by the same command in fresh processes: byte-identity holds for runs
    # with the same thread settings (the CTF compensation is a BLAS matrix product)
    clean = subprocess.run(
        _run_command(_config(tmp_path, meg_folder, tmp_path / "clean", "clean")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert clean.returncode == 0, clean.stderr
    command = _run_command(_config(tmp_path, meg_folder, tmp_path / "out", "run"))
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
    # what a kill at any other moment leaves: a session being written, one being replaced, a
    # manifest being written
    (sessions / ".sub-04_task-rest_meg.tmp-0123abcd").mkdir()
    (sessions / ".sub-04_task-rest_meg.tmp-0123abcd" / "data.npy").write_bytes(b"half")
    (sessions / ".sub-01_task-rest_meg.old-89abcdef").mkdir()
    (tmp_path / "out" / ".manifest.json.tmp-deadbeef").write_text("{")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for leftover in sessions.iterdir():
        assert not leftover.name.startswith("."), "temporary folders must not remain"
    assert not list((tmp_path / "out").glob(".manifest.json.tmp-*"))
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "clean")


def test_a_second_run_into_the_same_folder_is_refused_while_one_works(meg_folder, tmp_path):
    out = tmp_path / "prep"
    out.mkdir()
    with folder_lock(out):
        with pytest.raises(FolderLockedError, match=rf"{out} is being written by another run"):
            preprocess(folder_source(meg_folder), FAST, out)
        result = CliRunner().invoke(
            app, ["preprocess", "--input", str(meg_folder), "--out", str(out)]
        )
        assert result.exit_code == 1
        assert "is being written by another run" in result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    assert not (out / "sessions").exists()  # nothing was processed
    assert preprocess(folder_source(meg_folder), FAST, out).count("done") == 5  # lock released


def test_mixing_pipelines_needs_permission_and_is_reported(meg_folder, tmp_path):
    first_half, second_half = tmp_path / "a", tmp_path / "b"
    first_half.mkdir()
    second_half.mkdir()
    for path in sorted(meg_folder.glob("sub-0[12]*")):
        shutil.move(path, first_half / path.name)
    for path in sorted(meg_folder.glob("sub-0[34]*")):
        shutil.move(path, second_half / path.name)
    out = tmp_path / "prep"
    preprocess(folder_source(first_half), FAST, out)
    other = [*FAST[:2], {"name": "normalize", "params": {"method": "standard"}}]
    runner = CliRunner()
    config = tmp_path / "other.yaml"
    config.write_text(
        json.dumps(
            {
                "preprocessing": {
                    "source": folder_source(second_half),
                    "stages": other,
                    "out_dir": str(out),
                }
            }
        )
    )
    refused = runner.invoke(app, ["preprocess", str(config)])
    assert refused.exit_code == 1 and "another pipeline" in refused.output
    assert "--mix-pipelines" in refused.output and str(out) in refused.output
    assert sorted(p.name for p in (out / "sessions").iterdir()) == [
        "sub-01_task-rest_meg",
        "sub-02_task-rest_meg",
    ]
    allowed = runner.invoke(app, ["preprocess", str(config), "--mix-pipelines"])
    assert allowed.exit_code == 0, allowed.output
    manifest = PreparedDataset(out).manifest
    assert manifest["mixed"] is True
    groups = {tuple(p["sessions"]): p for p in manifest["pipelines"]}
    assert set(groups) == {
        ("sub-01_task-rest_meg", "sub-02_task-rest_meg"),
        ("sub-03_task-rest_meg", "sub-04_task-rest_meg"),
    }
    standard = groups[("sub-03_task-rest_meg", "sub-04_task-rest_meg")]["pipeline"]
    assert standard[-1]["params"]["method"] == "standard"
    info = runner.invoke(app, ["data", "info", str(out)])
    assert info.exit_code == 0 and "MIXED" in info.output and "2 different pipelines" in info.output
    as_json = json.loads(runner.invoke(app, ["data", "info", str(out), "--json"]).stdout)
    assert as_json["mixed"] is True and len(as_json["pipelines"]) == 2
    # the configuration key does the same as the flag
    third = tmp_path / "c"
    third.mkdir()
    shutil.copy(first_half / "sub-01_task-rest_meg.fif", third / "sub-09_task-rest_meg.fif")
    data = json.loads(config.read_text())
    data["preprocessing"].update(source=folder_source(third), mix_pipelines=True)
    data["preprocessing"]["stages"] = [*FAST[:2], {"name": "clip"}]
    config.write_text(json.dumps(data))
    assert runner.invoke(app, ["preprocess", str(config)]).exit_code == 0
    assert len(PreparedDataset(out).manifest["pipelines"]) == 3


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


def write_raw(path: Path, data: np.ndarray, sfreq: float = 200.0) -> Path:
    import mne

    info = mne.create_info([f"EEG{i:03d}" for i in range(len(data))], sfreq, "eeg")
    mne.io.RawArray(data, info, verbose="error").save(path, overwrite=True, verbose="error")
    return path


def eeg_noise(n_channels: int = 8, seconds: float = 20.0, sfreq: float = 200.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_channels, int(seconds * sfreq))) * 1e-5


def test_a_constant_recording_fails_as_flat(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_raw(raw / "sub-01_task-rest_eeg.fif", np.full((8, 4000), 2e-6))
    result = CliRunner().invoke(
        app, ["preprocess", "--input", str(raw), "--out", str(tmp_path / "prep")]
    )
    assert result.exit_code == 1  # every recording failed
    (failure,) = PreparedDataset(tmp_path / "prep").manifest["failures"]
    assert failure["error"].startswith("sub-01_task-rest_eeg: ") and "is flat" in failure["error"]
    assert "all 8 data channels are constant" in failure["error"]


def test_a_constant_channel_is_marked_bad_and_zeroed_and_the_others_are_intact(tmp_path):
    data = eeg_noise()
    with_flat = data.copy()
    with_flat[3] = 2e-6
    raw_flat, raw_rest = tmp_path / "flat", tmp_path / "rest"
    raw_flat.mkdir()
    raw_rest.mkdir()
    write_raw(raw_flat / "sub-01_task-rest_eeg.fif", with_flat)
    write_raw(raw_rest / "sub-01_task-rest_eeg.fif", np.delete(data, 3, axis=0))
    preprocess(folder_source(raw_flat), DEFAULT_STAGES, tmp_path / "a")
    preprocess(folder_source(raw_rest), DEFAULT_STAGES, tmp_path / "b")
    flat = PreparedDataset(tmp_path / "a").sessions()[0]
    rest = PreparedDataset(tmp_path / "b").sessions()[0]
    assert flat.meta["bads"] == ["EEG003"]
    read_step = flat.meta["provenance"]["steps"][0]
    assert read_step["stage"] == "read" and read_step["flat_channels"] == ["EEG003"]
    assert (np.asarray(flat.data[3]) == 0).all()
    normalize = next(t for t in flat.meta["transforms"] if t["kind"] == "normalize")
    assert normalize["flat"] == ["EEG003"] and normalize["scale"][3] == 1.0
    others = np.delete(np.asarray(flat.data), 3, axis=0)
    np.testing.assert_allclose(others, np.asarray(rest.data), atol=1e-5)
    assert (np.subtract(*np.percentile(others, [75, 25], axis=1)) > 0.5).all()


def test_non_finite_samples_are_counted_and_reported_in_preprocessing(tmp_path, caplog):
    data = eeg_noise(seconds=4.0)
    data[2, 100:110] = np.nan
    raw = tmp_path / "raw"
    raw.mkdir()
    write_raw(raw / "sub-01_task-rest_eeg.fif", data)
    stages = [{"name": "read"}, {"name": "normalize"}]
    with caplog.at_level(logging.WARNING, logger="ephys"):
        summary = preprocess(folder_source(raw), stages, tmp_path / "prep")
    assert summary.count("done") == 1 and summary.results[0].non_finite == 10
    assert "10 sample(s) are NaN or infinite" in caplog.text
    session = PreparedDataset(tmp_path / "prep").sessions()[0]
    assert session.non_finite == 10
    params = {"roots": [str(tmp_path / "prep")], "window_seconds": 0.5}
    params["split"] = {"strategy": "time", "val": 0.0, "test": 0.0}
    with pytest.raises(ConfigError, match=r"sub-01_task-rest_eeg \(10\)"):
        get_registry("datasets").create("continuous_next_step", params)
    builder = get_registry("datasets").create(
        "continuous_next_step", {**params, "non_finite": "skip"}
    )
    train = builder.build("train")
    # 800 samples, windows of 100 + 1 every 100: the first two touch samples 100-109
    assert len(train) == 5 and train.index.start.tolist() == [200, 300, 400, 500, 600]
    assert all(np.isfinite(train[i][0]).all() for i in range(len(train)))
    assert builder.data_spec()["non_finite"]["windows_dropped"]["train"] == 2


class _BadNames(Folder):
    def discover(self):
        return [replace(ref, name="../escaped") for ref in super().discover()]


def test_session_names_from_sources_are_checked_before_anything_runs(meg_folder, tmp_path):
    unregister = get_registry("sources").register("bad_names", _BadNames)
    try:
        source = {"name": "bad_names", "params": {"root": str(meg_folder)}}
        with pytest.raises(ConfigError, match=r"unusable session name.*'\.\./escaped'"):
            preprocess(source, FAST, tmp_path / "prep" / "out")
    finally:
        unregister()
    assert not (tmp_path / "prep").exists() and not (tmp_path / "escaped").exists()


def test_an_output_path_that_is_a_file_is_a_one_line_error(meg_folder, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = CliRunner().invoke(
        app, ["preprocess", "--input", str(meg_folder), "--out", str(target)]
    )
    assert result.exit_code == 1 and "exists and is not a folder" in result.output
    assert "Traceback" not in result.output and target.read_text() == "x"


def test_the_pipeline_is_validated_once_and_travels_validated(tmp_path, monkeypatch):
    import pickle

    import ephys_core._validation as validation
    from ephys_data.examples import example_raw
    from ephys_data.pipeline import Pipeline
    from ephys_data.recording import Recording

    stages = [
        {"name": "read"},
        {"name": "bandpass", "params": {"l_freq": 1.0, "h_freq": 30.0}},
        {"name": "normalize"},
    ]
    pipeline = Pipeline(stages)
    registry = get_registry("preprocessing")
    assert [type(config) for _, config in pipeline.stages] == [
        registry.config_model(s["name"]) for s in stages
    ]
    clone = pickle.loads(pickle.dumps(pipeline))  # what process pools and Dask receive
    assert clone.config_hash == pipeline.config_hash and clone.specs == pipeline.specs
    # the same validated parameters give the same hash, however they are given
    validated = [(name, config) for name, config in pipeline.stages]
    assert Pipeline(validated).config_hash == pipeline.config_hash
    calls = []
    original = validation.validate_model
    monkeypatch.setattr(
        validation, "validate_model", lambda *a, **k: calls.append(a) or original(*a, **k)
    )
    path = tmp_path / "example_raw.fif"
    example_raw(seconds=2.0).save(path, verbose="error")
    out = clone.run(Recording.unloaded(path))
    assert out.state == "array" and calls == []  # stages made from their configs, unvalidated


def test_the_command_passes_the_configs_it_validated(meg_folder, tmp_path, monkeypatch):
    from pydantic import BaseModel

    import ephys_data.pipeline as pipeline_module

    seen = {}

    def fake(source, stages, out_dir, **kwargs):
        seen.update(source=source, stages=stages, kwargs=kwargs)
        raise ConfigError("stop here")

    monkeypatch.setattr(pipeline_module, "preprocess", fake)
    config = _config(tmp_path, meg_folder, tmp_path / "out", "run")
    result = CliRunner().invoke(app, ["preprocess", str(config), "--mix-pipelines"])
    assert result.exit_code == 1 and "stop here" in result.output
    assert isinstance(seen["source"]["params"], BaseModel)
    assert all(isinstance(stage["params"], BaseModel) for stage in seen["stages"])
    assert seen["kwargs"]["mix_pipelines"] is True
    real = pipeline_module.Pipeline(seen["stages"])
    assert real.config_hash == pipeline_module.Pipeline(FAST).config_hash
