"""The whole workflow through the `ephys` command, in fresh processes, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ephys_data.synthetic import write_example_dataset

pytestmark = pytest.mark.integration


# the installed console script, as users run it (DDP re-launches it for the second process)
EPHYS = str(Path(sys.executable).parent / "ephys")


def ephys(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [EPHYS, *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_example_dataset(tmp_path_factory.mktemp("wf") / "prepared", seconds=20)


def write_config(path: Path, prepared: Path, name: str, steps: int, **trainer) -> Path:
    config = {
        "name": name,
        "out_dir": str(path.parent / "runs"),
        "seed": 7,
        "data": {
            "dataset": {
                "name": "mulaw_next_step",
                "params": {
                    "roots": [str(prepared)],
                    "window_seconds": 0.5,
                    "split": {"val": 0.2, "test": 0.2},
                },
            },
            "batch_size": 8,
        },
        "model": {
            "name": "gpt2meg",
            "params": {
                "d_model": 16,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 64,
                "dropout": 0.0,
            },
        },
        "loss": "cross_entropy",
        "trainer": {
            "max_steps": steps,
            "log_every_n_steps": 5,
            "progress_bar": False,
            "checkpoint": {"every_n_steps": 5},
            **trainer,
        },
        "optim": {"warmup_steps": 5, "scheduler": {"name": "cosine"}},
    }
    path.write_text(json.dumps(config))
    return path


def test_train_killed_then_resumed_matches_an_uninterrupted_run(prepared, tmp_path):
    straight = ephys("-q", "train", str(write_config(tmp_path / "a.yaml", prepared, "a", 60)))
    assert straight.returncode == 0, straight.stderr
    config = write_config(tmp_path / "b.yaml", prepared, "b", 60)
    command = [EPHYS, "-q", "train", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "runs" / "b" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        if last.is_file() and torch.load(last, weights_only=True)["global_step"] >= 10:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    stopped_at = torch.load(last, weights_only=True)["global_step"]
    assert 10 <= stopped_at < 60
    resumed = ephys("-q", "train", str(config), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "runs/a/checkpoints/last.ckpt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["global_step"] == b["global_step"] == 60
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # test and export from the command line
    tested = ephys("test", str(config))
    assert tested.returncode == 0 and "test/loss" in tested.stdout
    exported = ephys("export", str(last), "--out", str(tmp_path / "export"))
    assert exported.returncode == 0
    assert (tmp_path / "export" / "model.safetensors").is_file()


def test_ddp_over_two_cpu_processes(prepared, tmp_path):
    config = write_config(tmp_path / "ddp.yaml", prepared, "ddp", 6)
    result = ephys(
        "-q",
        "train",
        str(config),
        "-o",
        "trainer.strategy=ddp",
        "-o",
        "trainer.devices=2",
        "-o",
        "trainer.accelerator=cpu",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "runs/ddp/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 6


def test_quickstart_on_simulated_meg(tmp_path):
    result = ephys("quickstart", "--out", str(tmp_path / "qs"), "--minutes", "0.6", "--steps", "6")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "repeat_last" in result.stdout and "token_frequency" in result.stdout
    assert "validation cross-entropy: model" in result.stderr
    summary = json.loads((tmp_path / "qs" / "report" / "summary.json").read_text())
    assert summary["evaluators"]["token_forecast"]["teacher_forced"]["split"] == "val"
    assert (tmp_path / "qs" / "report" / "psd.png").is_file()
    assert (tmp_path / "qs" / "quickstart.yaml").is_file()
    assert len(list((tmp_path / "qs" / "raw").glob("*.fif"))) == 6


def test_quickstart_on_a_users_recording_without_positions(recordings, tmp_path):
    result = ephys(
        "quickstart",
        "--input",
        str(recordings / "eeg" / "test.edf"),
        "--out",
        str(tmp_path / "qs"),
        "--steps",
        "3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = (tmp_path / "qs" / "quickstart.yaml").read_text()
    assert "strategy: time" in config  # one recording: split in time
    assert (tmp_path / "qs" / "report" / "report.md").is_file()
