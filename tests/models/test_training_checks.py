"""``ephys train`` checks everything before any work, never deletes what the user did not name,
and refuses a resume, a test or an evaluation whose configuration or data no longer fit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from engine_helpers import tiny_run

from ephys_core.config import load_config
from ephys_core.errors import ConfigError
from ephys_data.synthetic import write_example_dataset
from ephys_models.training import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    plan_training,
    run_test,
    train,
)
from ephys_models.training.checkpoint import CHECKPOINT_KEY


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- nothing outside what the user named ---------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "a/b", "/abs", ".hidden", ""])
def test_run_names_must_be_one_folder_name(signal_root, tmp_path, name):
    with pytest.raises(ConfigError, match="name: .*run name"):
        load_config(tiny_run(signal_root, tmp_path, name=name))


def test_overwrite_refuses_a_folder_holding_the_runs_data(tmp_path):
    root = write_example_dataset(tmp_path / "study" / "prepared", seconds=6)
    config = load_config(tiny_run(root, tmp_path, name="study"))
    before = files_under(tmp_path / "study")
    with pytest.raises(ConfigError, match="holds the run's own data"):
        train(config, overwrite=True)
    assert files_under(tmp_path / "study") == before


def test_overwrite_refuses_a_folder_that_is_not_a_run(signal_root, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="not an ephys run folder"):
        train(load_config(tiny_run(signal_root, tmp_path, name="notes")), overwrite=True)
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "years of work"
    with pytest.raises(ConfigError, match="not an ephys run folder"):
        train(load_config(tiny_run(signal_root, tmp_path, name="notes")))


def test_overwrite_refuses_the_working_directory(signal_root, tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    config = load_config(tiny_run(signal_root, tmp_path, name="here"))
    with pytest.raises(ConfigError, match="working directory"):
        train(config, overwrite=True)


def test_overwrite_checks_the_new_configuration_before_deleting_the_old_run(signal_root, tmp_path):
    good = tiny_run(signal_root, tmp_path, trainer={"max_steps": 2})
    train(load_config(good))
    before = files_under(tmp_path / "run")
    broken = tiny_run(signal_root, tmp_path, trainer={"max_steps": 2})
    broken["data"]["dataset"]["params"]["roots"] = [str(tmp_path / "typo")]
    with pytest.raises(ConfigError, match="typo"):
        train(load_config(broken), overwrite=True)
    assert files_under(tmp_path / "run") == before  # the old checkpoints are intact


def test_overwrite_replaces_the_run_whole_and_leaves_nothing_behind(signal_root, tmp_path):
    config = load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2}))
    train(config)
    (tmp_path / "run" / "stale.txt").write_text("from the old run")
    train(config, overwrite=True)
    assert not (tmp_path / "run" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".run.lock"]


def test_leftovers_of_killed_runs_are_removed_by_the_next_run(signal_root, tmp_path):
    config = load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2}))
    train(config)
    (tmp_path / ".run.replaced-deadbeef").mkdir()
    (tmp_path / ".run.replaced-deadbeef" / "old.ckpt").write_bytes(b"x")
    (tmp_path / "run" / "checkpoints" / ".last.ckpt.tmp-0badf00d").write_bytes(b"half")
    train(load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 4})), resume=True)
    assert not (tmp_path / ".run.replaced-deadbeef").exists()
    assert not list((tmp_path / "run" / "checkpoints").glob(".*"))


def test_checkpoints_are_written_atomically_inside_the_run(signal_root, tmp_path, monkeypatch):
    """No temporary file of a checkpoint goes to the system's temporary folder."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    train(load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2})))
    assert list(system_tmp.iterdir()) == []
    load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")


# -- impossible configurations fail before any work -------------------------------------------


def _fails_before_work(config_data, tmp_path, match):
    with pytest.raises(ConfigError, match=match) as info:
        plan_training(load_config(config_data))
    assert not (tmp_path / "run").exists()
    return str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_the_machine_lacks_is_refused_first(signal_root, tmp_path):
    config = tiny_run(signal_root, tmp_path, trainer={"accelerator": "gpu"})
    _fails_before_work(config, tmp_path, "trainer.accelerator: 'gpu' needs a CUDA device")


@pytest.mark.parametrize(
    ("trainer", "match"),
    [
        ({"accelerator": "tpuu"}, "unknown accelerator 'tpuu'"),
        ({"accelerator": "cpu", "devices": [0, 1]}, "a list of device indices selects GPUs"),
        ({"checkpoint": {"monitor": "val/acc"}}, "'val/acc' is not logged; the run logs"),
        ({"early_stopping": {"monitor": "val/los"}}, "early_stopping.monitor: 'val/los'"),
    ],
)
def test_trainer_settings_that_cannot_work(signal_root, tmp_path, trainer, match):
    _fails_before_work(tiny_run(signal_root, tmp_path, trainer=trainer), tmp_path, match)


def test_a_section_nothing_reads_is_refused(signal_root, tmp_path):
    config = tiny_run(signal_root, tmp_path)
    config["tokenizer"] = {"name": "mulaw"}
    _fails_before_work(config, tmp_path, "tokenizer: `ephys train` does not read this section")


def test_early_stopping_on_validation_needs_a_validation_split(signal_root, tmp_path):
    config = tiny_run(signal_root, tmp_path, trainer={"early_stopping": {"patience": 2}})
    config["data"]["dataset"]["params"]["split"] = {"val": 0.0, "test": 0.2}
    _fails_before_work(config, tmp_path, "needs a validation split")


def test_the_optimiser_and_scheduler_names_are_checked_first(signal_root, tmp_path):
    config = tiny_run(signal_root, tmp_path, optim={"name": "AdamV"})
    _fails_before_work(config, tmp_path, "did you mean Adam")
    config = tiny_run(signal_root, tmp_path, optim={"scheduler": {"name": "StepLR"}})
    config["optim"]["scheduler"]["params"] = {"step_sise": 2}
    _fails_before_work(config, tmp_path, "StepLR has no parameter.* step_sise")


def test_a_context_shorter_than_the_window_is_refused(signal_root, tmp_path):
    config = tiny_run(signal_root, tmp_path)
    config["model"]["params"]["context_length"] = 16
    message = _fails_before_work(config, tmp_path, "model: context_length is 16")
    assert "windows of 30" in message and "window_seconds" in message


def test_models_and_losses_check_the_kind_of_data(signal_root, tmp_path):
    config = tiny_run(signal_root, tmp_path)
    config["data"]["dataset"]["name"] = "continuous_next_step"
    config["data"]["dataset"]["params"].pop("augmentations")
    message = _fails_before_work(config, tmp_path, "the data holds continuous signals")
    assert "loss: cross_entropy scores token predictions" in message
    config = tiny_run(signal_root, tmp_path, loss={"name": "mse"})
    _fails_before_work(config, tmp_path, "loss: mse compares continuous signals")


def test_a_session_of_nan_samples_is_refused_before_training(tmp_path):
    """NaN used to become mu-law code 0 and train to a finite loss."""
    import json

    import numpy as np

    root = write_example_dataset(tmp_path / "prepared", seconds=6)
    session = root / "sessions" / sorted(p.name for p in (root / "sessions").iterdir())[0]
    data = np.load(session / "data.npy")
    data[:] = np.nan
    meta = json.loads((session / "meta.json").read_text())
    from ephys_data.format import write_manifest, write_session
    from ephys_data.recording import Recording

    recording = Recording.from_array(
        data,
        meta["sfreq"],
        meta["ch_names"],
        meta["ch_types"],
        name=meta["name"],
        subject=meta["subject"],
        units=tuple(meta["units"]),
    )
    write_session(root, recording, {})
    write_manifest(root)
    message = _fails_before_work(tiny_run(root, tmp_path), tmp_path, "NaN")
    assert meta["name"] in message and "\n" not in message


def test_an_empty_data_file_is_refused_before_training(signal_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(signal_root, root)
    victim = sorted((root / "sessions").iterdir())[0] / "data.npy"
    victim.write_bytes(b"")
    message = _fails_before_work(tiny_run(root, tmp_path), tmp_path, "data.npy is truncated")
    assert str(victim) in message


def test_explicit_data_parameters_must_match_the_data(signal_root, tmp_path):
    config = tiny_run(signal_root, tmp_path)
    config["model"]["params"]["n_channels"] = 5
    _fails_before_work(config, tmp_path, "n_channels is 5, but the data has 8 channels")


SCRIPT = textwrap.dedent(
    """
    import sys
    from ephys_core.cli import main
    sys.argv = ["ephys", *sys.argv[1:]]
    try:
        main()
    except SystemExit as exit:
        code = exit.code
    heavy = sorted({"torch", "lightning", "transformers"} & set(sys.modules))
    print("HEAVY", heavy, "CODE", code)
    """
)


def _run_cli(*args):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    return result.stdout.strip().splitlines()[-1], result.stderr


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"model": {"name": "gpt2mge"}}, "did you mean 'gpt2meg'"),
        ({"model": {"name": "gpt2meg", "params": {"n_layers": "four"}}}, "model.params.n_layers"),
        ({"trainer": {"checkpoint": {"monitor": "val/acc"}}}, "'val/acc' is not logged"),
        ({"model": {"name": "gpt2meg", "params": {"context_length": 8}}}, "context_length is 8"),
    ],
    ids=["unknown-model", "bad-param", "bad-monitor", "short-context"],
)
def test_a_failing_train_says_so_without_importing_torch(signal_root, tmp_path, change, match):
    config = tiny_run(signal_root, tmp_path)
    for key, value in change.items():
        config[key] = {**config[key], **value} if key == "trainer" else value
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    last, stderr = _run_cli("train", str(path))
    assert last == "HEAVY [] CODE 1" or last == "HEAVY [] CODE 2", (last, stderr)
    assert match in stderr and "Traceback" not in stderr
    assert not (tmp_path / "run").exists()
    last, stderr = _run_cli("config", "validate", str(path))
    assert last.startswith("HEAVY []"), (last, stderr)


# -- checkpoints: the best by score, truncated files, resumption --------------------------------


def _fake_checkpoint(path, step, value, mode="min"):
    meta = {
        "format": 2,
        "config": {"trainer": {"checkpoint": {"monitor": "val/loss", "mode": mode}}},
        "data_spec": {},
        "versions": {},
        "score": {"monitor": "val/loss", "mode": mode, "value": value},
    }
    torch.save({CHECKPOINT_KEY: meta, "global_step": step, "state_dict": {}}, path)


@pytest.mark.parametrize(("mode", "expected"), [("min", 10), ("max", 30)])
def test_the_best_checkpoint_is_chosen_by_its_recorded_score(tmp_path, mode, expected):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    for step, value in ((10, 1.5), (20, 2.5), (30, 3.5)):
        _fake_checkpoint(folder / f"best-step{step:07d}.ckpt", step, value, mode)
    assert find_checkpoint(tmp_path / "run").name == f"best-step{expected:07d}.ckpt"


def test_training_records_the_score_it_is_judged_by(signal_root, tmp_path):
    config = load_config(
        tiny_run(
            signal_root,
            tmp_path,
            trainer={
                "max_steps": 8,
                "val_check_interval": 2,
                "check_val_every_n_epoch": None,
                "checkpoint": {"save_top_k": -1},
            },
        )
    )
    train(config)
    from ephys_models.training import read_metadata

    scores = {
        p: read_metadata(p)["score"]["value"]
        for p in (tmp_path / "run" / "checkpoints").glob("best-*.ckpt")
    }
    assert len(scores) >= 2 and all(v is not None for v in scores.values())
    assert find_checkpoint(tmp_path / "run") == min(scores, key=scores.get)


def test_a_truncated_checkpoint_is_one_line(signal_root, tmp_path):
    train(load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2})))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(
        CheckpointError, match="truncated, corrupt or not a PyTorch checkpoint"
    ) as info:
        load_checkpoint(last)
    assert "\n" not in str(info.value)
    config = load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 4}))
    with pytest.raises(ConfigError, match="--resume: .*truncated, corrupt"):
        train(config, resume=True)


def test_a_resume_with_another_model_is_refused_before_the_folder_is_touched(signal_root, tmp_path):
    train(load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2})))
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    changed = tiny_run(signal_root, tmp_path, trainer={"max_steps": 4})
    changed["model"]["params"]["d_model"] = 32
    with pytest.raises(ConfigError, match=r"model\.params\.d_model: 16 -> 32"):
        train(load_config(changed), resume=True)
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == before  # config.yaml included
    # what may change on resume: the length, the hardware, the cadence, the logging
    longer = tiny_run(signal_root, tmp_path, trainer={"max_steps": 4, "log_every_n_steps": 1})
    assert train(load_config(longer), resume=True).global_step == 4


def test_a_checkpoint_is_tested_only_on_data_it_fits(signal_root, tmp_path):
    train(load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2})))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    other = write_example_dataset(tmp_path / "other", seconds=6, n_channels=5)
    config = load_config(tiny_run(other, tmp_path))
    with pytest.raises(ConfigError, match="n_channels 8 -> 5"):
        run_test(ckpt, config)


def test_testing_a_loose_checkpoint_writes_only_where_told(signal_root, tmp_path):
    train(load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2})))
    loose = tmp_path / "elsewhere" / "model.ckpt"
    loose.parent.mkdir()
    shutil.copy(tmp_path / "run" / "checkpoints" / "last.ckpt", loose)
    metrics = run_test(loose)
    assert "test/loss" in metrics
    assert sorted(p.name for p in loose.parent.iterdir()) == ["model.ckpt"]
    run_test(loose, out_dir=tmp_path / "metrics")
    assert (tmp_path / "metrics" / "test_metrics.json").is_file()
