"""The training engine: from a run configuration to checkpoints, exactly resumable."""

from __future__ import annotations

import hashlib
import json

import lightning.pytorch as pl
import pytest
import torch
import yaml
from engine_helpers import tiny_run

from ephys_core import get_hooks
from ephys_core.config import load_config
from ephys_core.errors import ConfigError
from ephys_core.hookspecs import hookimpl
from ephys_models.training import export, load_checkpoint, load_exported, run_test, train


def test_a_run_trains_logs_and_checkpoints(signal_root, tmp_path):
    result = train(load_config(tiny_run(signal_root, tmp_path)))
    run = tmp_path / "run"
    assert result.global_step == 6
    assert (run / "checkpoints" / "last.ckpt").is_file()
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["model"]["params"]["n_channels"] == 8  # filled from the data
    assert stored["model"]["params"]["vocab_size"] == 256
    header = (run / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    for key in ("train/loss_step", "train/accuracy", "perf/tokens_per_s", "lr-AdamW"):
        assert key in header
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")  # weights_only=True
    assert checkpoint["ephys"]["config"]["model"]["name"] == "gpt2meg"
    assert checkpoint["global_step"] == 6
    assert json.loads((run / "train_summary.json").read_text())["global_step"] == 6


def test_an_existing_run_needs_resume_or_overwrite(signal_root, tmp_path):
    config = load_config(tiny_run(signal_root, tmp_path, trainer={"max_steps": 2}))
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(config, resume=True)
    train(config)
    with pytest.raises(ConfigError, match="--resume"):
        train(config)
    assert train(config, overwrite=True).global_step == 2


class Recorder(pl.Callback):
    def __init__(self, log, crash_at=None):
        self.record, self.crash_at = log, crash_at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.record.append(
            (trainer.global_step, hashlib.md5(batch[0].numpy().tobytes()).hexdigest())
        )

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.crash_at:
            raise RuntimeError("simulated crash")


class Plugin:
    def __init__(self, callback):
        self.callback = callback

    @hookimpl
    def ephys_training_callbacks(self, config):
        return [self.callback]


def _train_recording(config, log, crash_at=None, resume=False):
    plugin = Plugin(Recorder(log, crash_at))
    get_hooks().register(plugin)
    try:
        return train(config, resume=resume, overwrite=not resume)
    finally:
        get_hooks().unregister(plugin)


@pytest.mark.parametrize("crash_at", [11, 14], ids=["mid-epoch", "epoch-end"])
def test_resumption_continues_exactly(signal_root, tmp_path, crash_at):
    # dropout and augmentation make the result depend on random state: it must resume too
    sections = {
        "trainer": {"max_steps": 18, "checkpoint": {"every_n_steps": 4}},
        "data": {"batch_size": 8},
        "model": {
            "name": "gpt2meg",
            "params": {
                "d_model": 16,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 64,
                "dropout": 0.2,
            },
        },
    }
    full, first, second = [], [], []
    _train_recording(load_config(tiny_run(signal_root, tmp_path, "a", **sections)), full)
    crashed = load_config(tiny_run(signal_root, tmp_path, "b", **sections))
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train_recording(crashed, first, crash_at=crash_at)
    resumed = _train_recording(crashed, second, resume=True)
    assert resumed.global_step == 18
    restart = second[0][0]
    assert 0 < restart < crash_at  # resumed from the last checkpoint
    assert second == full[restart:]  # the same batches in the same order
    a = load_checkpoint(tmp_path / "a/checkpoints/last.ckpt")
    b = load_checkpoint(tmp_path / "b/checkpoints/last.ckpt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (
        a["optimizer_states"][0]["state"][0]["step"] == b["optimizer_states"][0]["state"][0]["step"]
    )


def test_the_default_cadence_writes_last_ckpt_at_each_epoch_end_and_a_crash_resumes(
    signal_root, tmp_path
):
    """Without every_n_steps, last.ckpt is written at the end of every epoch (after its
    validation), not only when the run ends."""
    sections = {"trainer": {"max_steps": 24}, "data": {"batch_size": 8}}  # 14 steps an epoch
    full, first, second = [], [], []
    _train_recording(load_config(tiny_run(signal_root, tmp_path, "a", **sections)), full)
    crashed = load_config(tiny_run(signal_root, tmp_path, "b", **sections))
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train_recording(crashed, first, crash_at=20)
    saved = load_checkpoint(tmp_path / "b/checkpoints/last.ckpt")["global_step"]
    assert 0 < saved < 20  # the end of the first epoch
    resumed = _train_recording(crashed, second, resume=True)
    assert resumed.global_step == 24 and second[0][0] == saved
    assert second == full[saved:]  # the next epoch's batches, as if never stopped
    a = load_checkpoint(tmp_path / "a/checkpoints/last.ckpt")["state_dict"]
    b = load_checkpoint(tmp_path / "b/checkpoints/last.ckpt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_highway_is_fitted_once_without_disturbing_the_run_and_survives_a_resume(
    signal_root, tmp_path
):
    params = {"d_model": 16, "n_layers": 1, "n_heads": 2, "context_length": 64}
    sections = {"trainer": {"max_steps": 10, "checkpoint": {"every_n_steps": 4}}}
    plain, with_highway, first, second = [], [], [], []
    _train_recording(load_config(tiny_run(signal_root, tmp_path, "plain", **sections)), plain)
    sections["model"] = {
        "name": "gpt2meg",
        "params": {**params, "highway": "var", "highway_order": 4},
    }
    _train_recording(load_config(tiny_run(signal_root, tmp_path, "a", **sections)), with_highway)
    assert with_highway == plain  # fitting read batches without changing the run's
    crashed = load_config(tiny_run(signal_root, tmp_path, "b", **sections))
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train_recording(crashed, first, crash_at=7)
    _train_recording(crashed, second, resume=True)
    a = load_checkpoint(tmp_path / "a/checkpoints/last.ckpt")["state_dict"]
    b = load_checkpoint(tmp_path / "b/checkpoints/last.ckpt")["state_dict"]
    assert bool(a["model.highway.fitted"]) and bool(a["model.highway.weight"].abs().sum() > 0)
    assert all(torch.equal(a[k], b[k]) for k in a)  # resumed, not fitted again


def test_learning_rate_warms_up_then_follows_cosine(signal_root, tmp_path):
    from ephys_models.training import plan_training
    from ephys_models.training.module import EphysModule
    from ephys_models.training.optim import build_optimizer, build_scheduler, parameter_groups

    config = load_config(tiny_run(signal_root, tmp_path))
    plan = plan_training(config)
    module = EphysModule(plan.config, plan.data_spec)
    groups = parameter_groups(module.model, config.optim)
    assert groups[1]["weight_decay"] == 0.0
    no_decay = {id(p) for p in groups[1]["params"]}
    for name, param in module.model.named_parameters():
        if "bias" in name or "norm" in name.lower() or "ln" in name or param.ndim < 2:
            assert id(param) in no_decay, name
    optimizer = build_optimizer(module.model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, total_steps=12)["scheduler"]
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.5e-3) and lrs[1] == pytest.approx(1e-3)
    assert lrs[-1] < lrs[5] < lrs[2]
    assert lrs[-1] >= 0.1e-3 - 1e-12  # min_lr_ratio


def test_schedulers_and_optimisers_by_name(signal_root, tmp_path):
    from ephys_models.training.optim import build_optimizer, build_scheduler

    model = torch.nn.Linear(3, 3)
    config = load_config(
        {"optim": {"name": "SGD", "scheduler": {"name": "StepLR", "params": {"step_size": 2}}}}
    )
    optimizer = build_optimizer(model, config.optim)
    assert isinstance(optimizer, torch.optim.SGD)
    assert isinstance(
        build_scheduler(optimizer, config.optim, 10)["scheduler"], torch.optim.lr_scheduler.StepLR
    )
    with pytest.raises(ConfigError, match="did you mean Adam"):
        build_optimizer(model, load_config({"optim": {"name": "AdamV"}}).optim)
    with pytest.raises(ConfigError, match="did you mean StepLR"):
        build_scheduler(
            optimizer, load_config({"optim": {"scheduler": {"name": "SteppLR"}}}).optim, 10
        )


def test_free_running_targets_line_up():
    from ephys_core import get_registry
    from ephys_core.config import FreeRunningSection
    from ephys_models.training.free_running import free_running_step

    model = (
        get_registry("models")
        .create(
            "gpt2meg",
            {
                "n_channels": 2,
                "vocab_size": 16,
                "d_model": 8,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 32,
            },
        )
        .eval()
    )
    x = torch.randint(0, 16, (3, 2, 12))
    targets = torch.randint(0, 16, (3, 2, 12))
    outputs, sliced = free_running_step(model, x, targets, FreeRunningSection(k_steps=4))
    assert outputs.shape == (3, 2, 4, 16)
    assert torch.equal(sliced, targets[..., 7:11])
    # the first free-running step sees only real context, so it equals teacher forcing
    teacher = model(x[..., :8])[..., -1, :]
    assert torch.allclose(outputs[..., 0, :], teacher, atol=1e-5)


def test_free_running_and_the_optional_extras_train(signal_root, tmp_path):
    config = load_config(
        tiny_run(
            signal_root,
            tmp_path,
            trainer={
                "max_steps": 4,
                "free_running": {"k_steps": 3, "prob": 1.0},
                "early_stopping": {"patience": 2},
                "swa": {"epoch_start": 1},
                "loggers": ["csv", "tensorboard"],
                "precision": "bf16-mixed",
            },
            data={"mixup": {"alpha": 0.4}, "batch_size": 4},
            optim={"warmup_steps": 0, "scheduler": None},
        )
    )  # SWA sets the learning rate itself
    assert train(config).global_step == 4
    assert list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents*"))


def test_free_running_refuses_continuous_models(signal_root, tmp_path):
    from ephys_core.config import FreeRunningSection
    from ephys_models.training.free_running import free_running_step

    with pytest.raises(ConfigError, match="only token models"):
        free_running_step(
            torch.nn.Identity(), torch.randn(2, 3, 10), torch.randn(2, 3, 10), FreeRunningSection()
        )


def test_test_and_export(signal_root, tmp_path):
    train(load_config(tiny_run(signal_root, tmp_path)))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    metrics = run_test(ckpt)
    assert {"test/loss", "test/accuracy", "test/mse"} <= set(metrics)
    assert json.loads((tmp_path / "run" / "test_metrics.json").read_text())["metrics"] == metrics
    folder = export(ckpt, tmp_path / "export")
    model, config = load_exported(folder)
    assert config["config"]["model"]["name"] == "gpt2meg"
    from ephys_models.training import module_from_checkpoint

    original = module_from_checkpoint(ckpt).model.eval()
    x = torch.randint(0, 256, (1, 8, 20))
    assert torch.equal(model(x), original(x))


@pytest.mark.filterwarnings("ignore:The number of training batches:UserWarning")
def test_batch_size_finder_never_exceeds_the_split(signal_root, tmp_path):
    # on a CPU nothing runs out of memory, so the finder grows the batch to the whole split;
    # training must still run its steps (batches never larger than the data)
    config = load_config(
        tiny_run(signal_root, tmp_path, trainer={"max_steps": 4, "batch_size_finder": True})
    )
    assert train(config).global_step == 4
