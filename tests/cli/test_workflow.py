"""The whole workflow through the `ephys` command, in fresh processes, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

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


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "configs" / "gpt2meg.yaml"


def example_overrides(prepared: Path, out: Path, name: str) -> list[str]:
    """Shrink the example configuration to seconds of CPU and point it at test data."""
    values = {
        "name": name,
        "out_dir": str(out),
        "data.dataset.params.roots": f"[{prepared}]",
        "data.dataset.params.channels": "null",
        "data.dataset.params.window_seconds": "0.5",
        "data.dataset.params.overlap_seconds": "0.25",
        "model.params.d_model": "16",
        "model.params.n_layers": "1",
        "model.params.n_heads": "2",
        "model.params.context_length": "64",
        "trainer.max_steps": "60",
        "trainer.checkpoint.every_n_steps": "5",
        "trainer.val_check_interval": "20",
        "trainer.limit_val_batches": "2",
        "trainer.log_every_n_steps": "5",
        "trainer.progress_bar": "false",
        "optim.warmup_steps": "5",
    }
    return [arg for key, value in values.items() for arg in ("-o", f"{key}={value}")]


def test_example_configs_validate():
    for config in sorted(EXAMPLE.parent.glob("*.yaml")):
        result = ephys("config", "validate", str(config))
        assert result.returncode == 0, (config, result.stderr)


def test_example_config_trains_is_killed_resumes_and_matches(prepared, tmp_path):
    runs = tmp_path / "runs"
    straight = ephys("-q", "train", str(EXAMPLE), *example_overrides(prepared, runs, "a"))
    assert straight.returncode == 0, straight.stderr
    command = [EPHYS, "-q", "train", str(EXAMPLE), *example_overrides(prepared, runs, "b")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = runs / "b" / "checkpoints" / "last.ckpt"
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
    resumed = ephys(
        "-q", "train", str(EXAMPLE), *example_overrides(prepared, runs, "b"), "--resume"
    )
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(runs / "a/checkpoints/last.ckpt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["global_step"] == b["global_step"] == 60
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # test and export from the command line
    tested = ephys("test", "--ckpt", str(last))
    assert tested.returncode == 0 and "test/loss" in tested.stdout
    exported = ephys("export", str(last), "--out", str(tmp_path / "export"))
    assert exported.returncode == 0
    assert (tmp_path / "export" / "model.safetensors").is_file()
    evaluated = ephys(
        "eval",
        "--ckpt",
        str(last),
        "--out",
        str(tmp_path / "report"),
        "-o",
        "evaluation.evaluators=[{name: token_forecast, params: "
        "{max_windows: 8, n_contexts: 4, horizon_seconds: 0.5, fit_segments: 4, "
        "fit_seconds: 2.0, ar_max_order: 4, var_orders: [1, 2], n_boot: 20}}]",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert (tmp_path / "report" / "summary.json").is_file()


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


def test_a_learned_tokenizer_trains_under_ddp(prepared, tmp_path):
    """The codebooks' k-means initialisation, EMA statistics and restarts are all-reduced
    over the ranks: a brainomni run over two CPU processes trains and exports."""
    config = write_config(tmp_path / "ddp.yaml", prepared, "ddptok", 4)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["dataset"] = {
        "name": "reconstruction",
        "params": {**raw["data"]["dataset"]["params"], "window_seconds": 0.32},
    }
    raw["model"] = {
        "name": "brainomni",
        "params": {"channels": 4, "dim": 8, "n_latents": 2, "n_heads": 2, "codebook_size": 16},
    }
    raw["loss"] = "tokenizer_reconstruction"
    config.write_text(yaml.safe_dump(raw))
    result = ephys(
        "-q", "train", str(config), "-o", "trainer.strategy=ddp", "-o", "trainer.devices=2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = tmp_path / "runs/ddptok/checkpoints/last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 4
    exported = ephys("tokenizer", "export", str(last), "--out", str(tmp_path / "tok"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert (tmp_path / "tok" / "tokenizer.json").is_file()


def test_quickstart_on_simulated_meg(tmp_path):
    result = ephys("quickstart", "--out", str(tmp_path / "qs"), "--minutes", "1", "--steps", "6")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("ar", "var", "persistence", "token_frequency", "real_other"):
        assert name in result.stdout
    assert "test cross-entropy: model" in result.stderr
    assert "the best baseline" in result.stderr
    summary = json.loads((tmp_path / "qs" / "report" / "summary.json").read_text())
    assert summary["evaluators"]["token_forecast"]["teacher_forced"]["split"] == "test"
    assert "var" in summary["evaluators"]["token_forecast"]["teacher_forced"]["forecasters"]
    assert (tmp_path / "qs" / "report" / "psd.png").is_file()
    assert (tmp_path / "qs" / "quickstart.yaml").is_file()
    assert len(list((tmp_path / "qs" / "raw").glob("*.fif"))) == 20


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


def test_tokenizer_fit_encode_train_eval_decode(prepared, tmp_path):
    """`ephys tokenizer fit` on the run's training split, `encode` once, a token model trained
    on the codes through `tokens_next_step`, evaluated with its rollouts decoded through the
    tokenizer, and the codes decoded back to signals."""
    config = write_config(tmp_path / "run.json", prepared, "on-codes", steps=10)
    raw = json.loads(config.read_text())
    tokenizer, codes = tmp_path / "quantile", tmp_path / "codes"
    fitted = ephys(
        "tokenizer",
        "fit",
        "quantile",
        "--config",
        str(config),
        "--out",
        str(tokenizer),
        "-p",
        "n_codes=64",
    )
    assert fitted.returncode == 0, fitted.stderr
    assert "training session(s)" in fitted.stderr
    encoded = ephys(
        "tokenizer", "encode", str(tokenizer), "--data", str(prepared), "--out", str(codes)
    )
    assert encoded.returncode == 0, encoded.stderr
    assert "5 session(s) encoded" in encoded.stderr
    raw["data"]["dataset"]["name"] = "tokens_next_step"
    raw["data"]["dataset"]["params"]["roots"] = [str(codes)]
    raw["evaluation"] = {
        "split": "test",
        "evaluators": [
            {
                "name": "token_forecast",
                "params": {
                    "n_contexts": 4,
                    "horizon_seconds": 1.0,
                    "max_windows": 16,
                    "n_boot": 20,
                    "fit_segments": 4,
                    "fit_seconds": 5.0,
                },
            }
        ],
    }
    config.write_text(json.dumps(raw))
    trained = ephys("train", str(config))
    assert trained.returncode == 0, trained.stderr
    evaluated = ephys("eval", str(config))
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads((tmp_path / "runs" / "on-codes" / "eval" / "summary.json").read_text())
    result = summary["evaluators"]["token_forecast"]
    forecasters = result["teacher_forced"]["forecasters"]
    assert {"model", "ar", "var", "persistence", "token_frequency"} <= set(forecasters)
    # the baselines' Gaussians are integrated over the quantile bins: finite, below uniform
    assert all(
        v["cross_entropy"]["value"] < np.log(64)
        for k, v in forecasters.items()
        if k in ("ar", "var")
    )
    decoded = ephys("tokenizer", "decode", str(codes), "--out", str(tmp_path / "decoded"))
    assert decoded.returncode == 0, decoded.stderr
    assert "5 session(s) decoded" in decoded.stderr
    missing = ephys(
        "tokenizer",
        "encode",
        str(tmp_path / "nothing"),
        "--data",
        str(prepared),
        "--out",
        str(tmp_path / "x"),
    )
    assert missing.returncode != 0 and "not a tokenizer folder" in missing.stderr
