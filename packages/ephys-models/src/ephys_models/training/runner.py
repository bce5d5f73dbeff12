"""``ephys train`` and ``ephys test``: from a run configuration to a trained, tested model."""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ephys_core.config import RunConfig
from ephys_core.errors import ConfigError, MissingDependencyError
from ephys_core import get_hooks
from ephys_core.logging import get_logger
from ephys_core import get_registry
from ephys_models.training.binding import bind_params
from ephys_models.training.callbacks import LogProgress, PerformanceMonitor
from ephys_models.training.data import EphysDataModule
from ephys_models.training.module import EphysModule

__all__ = ["TrainResult", "build_dataset", "build_trainer", "prepare", "run_test", "train"]

logger = get_logger(__name__)


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    global_step: int
    metrics: dict[str, float] = field(default_factory=dict)


def prepare(config: RunConfig) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Validate, build the dataset, and bind data-derived model parameters.

    Returns
    -------
    tuple
        ``(dataset builder, run configuration data, data_spec)``.
    """
    config.require("data", "model", "loss", command="train")
    config.resolve(["data", "model", "loss"])
    assert config.data is not None and config.model is not None
    builder = build_dataset(config.data.dataset.name, config.data.dataset.params)
    data_spec = builder.data_spec()
    run = config.to_data()
    model_cls = get_registry("models").load(config.model.name)
    params = bind_params(model_cls.Config, config.model.params, data_spec)  # as the user wrote
    run["model"]["params"] = (
        get_registry("models")
        .validate_params(config.model.name, params, prefix="model.params")
        .model_dump(mode="json")
    )
    return builder, run, data_spec


def build_dataset(name: str, params: dict[str, Any]) -> Any:
    """The dataset component; its configuration errors name their full path."""
    try:
        return get_registry("datasets").create(name, params)
    except ConfigError as err:
        raise ConfigError(
            [p if p.startswith("data.") else f"data.dataset.params.{p}" for p in err.problems],
            source=err.source,
        ) from None


def _loggers(config: RunConfig, run_dir: Path) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger

    loggers: list[Any] = []
    for name in dict.fromkeys(config.trainer.loggers):
        if name == "csv":
            # one version folder per attempt, so resuming never overwrites earlier logs
            loggers.append(CSVLogger(run_dir, name="logs"))
        elif name == "tensorboard":
            try:
                from lightning.pytorch.loggers import TensorBoardLogger

                loggers.append(TensorBoardLogger(run_dir, name="tensorboard"))
            except ModuleNotFoundError:
                raise MissingDependencyError(
                    "the tensorboard logger",
                    "tensorboard",
                    'pip install "ephys-models[tensorboard]"',
                ) from None
        elif name == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise MissingDependencyError(
                    "the wandb logger", "wandb", 'pip install "ephys-models[wandb]"'
                ) from None
            from lightning.pytorch.loggers import WandbLogger

            loggers.append(WandbLogger(project="ephys", name=config.name, save_dir=run_dir))
    return loggers


def _callbacks(config: RunConfig, run_dir: Path, has_val: bool) -> list[Any]:
    from lightning.pytorch import callbacks as cb

    trainer = config.trainer
    ckpt = trainer.checkpoint
    directory = run_dir / "checkpoints"
    found: list[Any] = [
        cb.ModelCheckpoint(
            dirpath=directory,
            filename="step{step:07d}",
            auto_insert_metric_name=False,
            save_top_k=0,
            save_last=ckpt.save_last,
            every_n_train_steps=ckpt.every_n_steps,
            every_n_epochs=None if ckpt.every_n_steps else ckpt.every_n_epochs,
        )
    ]
    if has_val and ckpt.save_top_k != 0:
        found.append(
            cb.ModelCheckpoint(
                dirpath=directory,
                filename="best-step{step:07d}",
                auto_insert_metric_name=False,
                monitor=ckpt.monitor,
                mode=ckpt.mode,
                save_top_k=ckpt.save_top_k,
                save_on_train_epoch_end=False,  # only after a validation has produced the metric
            )
        )
    if trainer.early_stopping is not None:
        if not has_val and trainer.early_stopping.monitor.startswith("val/"):
            raise ConfigError("trainer.early_stopping: there is no validation split to monitor")
        es = trainer.early_stopping
        found.append(
            cb.EarlyStopping(
                monitor=es.monitor,
                patience=es.patience,
                min_delta=es.min_delta,
                mode=es.mode,
                check_on_train_epoch_end=not es.monitor.startswith("val/"),
            )
        )
    if trainer.swa is not None:
        if isinstance(trainer.swa.epoch_start, float) and trainer.max_epochs is None:
            raise ConfigError(
                "trainer.swa.epoch_start: a fraction of training needs max_epochs; "
                "give the epoch to start at as an integer"
            )
        found.append(
            cb.StochasticWeightAveraging(
                swa_lrs=trainer.swa.lrs, swa_epoch_start=trainer.swa.epoch_start
            )
        )
    if trainer.batch_size_finder:
        found.append(cb.BatchSizeFinder(mode="power"))
    if trainer.performance_monitor:
        found.append(PerformanceMonitor(every=trainer.log_every_n_steps))
    if trainer.progress_bar and _interactive():
        found.append(cb.RichProgressBar())
    else:
        found.append(LogProgress(every=max(trainer.log_every_n_steps, 1)))
    found.append(cb.LearningRateMonitor(logging_interval="step"))
    found.extend(get_hooks().training_callbacks(config))
    return found


def _interactive() -> bool:
    import sys

    return sys.stderr.isatty()


def build_trainer(config: RunConfig, run_dir: Path, has_val: bool = True) -> pl.Trainer:
    """A Lightning trainer configured from the ``trainer`` section."""
    import torch

    t = config.trainer
    if t.matmul_precision:
        torch.set_float32_matmul_precision(t.matmul_precision)
    callbacks = _callbacks(config, run_dir, has_val)
    return pl.Trainer(
        default_root_dir=run_dir,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=t.accumulate_grad_batches,
        val_check_interval=t.val_check_interval,
        check_val_every_n_epoch=t.check_val_every_n_epoch if t.val_check_interval is None else None,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches if has_val else 0,
        log_every_n_steps=t.log_every_n_steps,
        deterministic=t.deterministic,
        logger=_loggers(config, run_dir),
        callbacks=callbacks,
        enable_progress_bar=any(type(c).__name__ == "RichProgressBar" for c in callbacks),
        enable_model_summary=False,
        use_distributed_sampler=False,  # the loaders shard and resume themselves
        num_sanity_val_steps=0,
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")


def train(config: RunConfig, *, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train the configured model on the configured data.

    Parameters
    ----------
    config
        A loaded run configuration.
    resume
        Continue from ``<run>/checkpoints/last.ckpt``: step count, optimiser and scheduler
        state and the position in the data order carry on exactly.
    overwrite
        Delete an existing run folder of the same name first.
    """
    import torch

    run_dir = config.run_dir
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume:
        if not last.is_file():
            raise ConfigError(f"--resume: {last} does not exist; nothing to resume")
    elif (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{run_dir} already holds checkpoints; continue it with --resume, replace it "
                "with --overwrite, or choose another run name (-o name=...)"
            )
        shutil.rmtree(run_dir)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    builder, run, data_spec = prepare(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    import yaml

    (run_dir / "config.yaml").write_text(yaml.safe_dump(run, sort_keys=False), encoding="utf-8")
    _write_json(run_dir / "data_spec.json", data_spec)
    module = EphysModule(run, data_spec)
    n_params = sum(p.numel() for p in module.model.parameters())
    logger.info(
        "%s: %s with %.2f M parameters on %d training windows",
        config.name,
        config.model.name,
        n_params / 1e6,
        data_spec["splits"]["train"]["windows"],
    )
    assert config.data is not None
    windows = data_spec["splits"]["train"]["windows"]
    if windows == 0 or (config.data.drop_last and windows < config.data.batch_size):
        raise ConfigError(
            f"data: the training split has {windows} window(s), not one full batch of "
            f"{config.data.batch_size}; use shorter windows, a smaller batch_size, more data, "
            "or data.drop_last: false"
        )
    datamodule = EphysDataModule(builder, config.data, config.seed)
    has_val = data_spec["splits"]["val"]["windows"] > 0
    trainer = build_trainer(config, run_dir, has_val)
    with warnings.catch_warnings():
        # train() already refused to reuse a run folder unless resuming or overwriting
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=last if resume else None, weights_only=True
        )
    if config.trainer.checkpoint.save_last and not trainer.interrupted:
        saved = (
            last.is_file()
            # memory-mapped: only the step is read, not the weights
            and torch.load(last, weights_only=True, map_location="cpu", mmap=True)["global_step"]
        )
        if saved != trainer.global_step:  # the cadence missed the final step
            trainer.save_checkpoint(last, weights_only=False)
    best = None
    for callback in trainer.checkpoint_callbacks:
        path = getattr(callback, "best_model_path", "")
        if path and Path(path).name.startswith("best"):
            best = Path(path)
    metrics = {
        k: float(v)
        for k, v in trainer.callback_metrics.items()
        if isinstance(v, torch.Tensor) and v.numel() == 1
    }
    result = TrainResult(
        run_dir, last if last.is_file() else None, best, trainer.global_step, metrics
    )
    _write_json(
        run_dir / "train_summary.json",
        {
            "global_step": result.global_step,
            "metrics": metrics,
            "best_checkpoint": str(best) if best else None,
            "last_checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None,
        },
    )
    return result


def run_test(checkpoint: str | Path, config: RunConfig | None = None) -> dict[str, float]:
    """Evaluate a checkpoint on the test split (teacher-forced loss and metrics).

    Parameters
    ----------
    checkpoint
        A checkpoint written by :func:`train`.
    config
        Run configuration overriding the one stored in the checkpoint (for example to test on
        other data); by default the stored one is used.
    """
    from ephys_models.training.checkpoint import module_from_checkpoint

    module = module_from_checkpoint(checkpoint)
    run = RunConfig.model_validate(module.run_data) if config is None else config
    run.require("data", command="test")
    assert run.data is not None
    run.resolve(["data"])
    builder = build_dataset(run.data.dataset.name, run.data.dataset.params)
    datamodule = EphysDataModule(builder, run.data, run.seed)
    trainer = pl.Trainer(
        accelerator=run.trainer.accelerator,
        devices=1,
        precision=run.trainer.precision,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=run.run_dir,
    )
    results = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    out = Path(checkpoint).resolve().parent.parent / "test_metrics.json"
    _write_json(out, {"checkpoint": str(checkpoint), "metrics": metrics})
    return metrics
