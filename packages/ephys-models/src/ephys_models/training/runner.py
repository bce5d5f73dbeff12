"""``ephys train`` and ``ephys test``: from a run configuration to a trained, tested model."""

from __future__ import annotations

import json
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ephys_core.config import RunConfig
from ephys_core.errors import ConfigError, MissingDependencyError
from ephys_core.files import exclusive_lock
from ephys_core.logging import get_logger
from ephys_core.plugins import get_hooks
from ephys_models.training.callbacks import LogProgress, PerformanceMonitor
from ephys_models.training.checkpoint import load_checkpoint
from ephys_models.training.checkpoint_io import AtomicCheckpointIO
from ephys_models.training.compat import data_spec_problems
from ephys_models.training.data import EphysDataModule
from ephys_models.training.module import EphysModule
from ephys_models.training.plan import TrainingPlan, build_dataset, plan_training
from ephys_models.training.run_folder import RunFolder

__all__ = ["TrainResult", "build_trainer", "execute", "run_test", "train"]

logger = get_logger(__name__)


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    global_step: int
    metrics: dict[str, float] = field(default_factory=dict)


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
    found: list[Any] = []
    if ckpt.save_last:
        # last.ckpt itself is the one checkpoint this callback keeps: Lightning writes its own
        # `save_last` copy only when a top-k checkpoint was saved at the same step, which a
        # callback that keeps none never does (no last.ckpt until the run ends)
        found.append(
            cb.ModelCheckpoint(
                dirpath=directory,
                filename="last",
                monitor=None,
                save_top_k=1,
                enable_version_counter=False,
                every_n_train_steps=ckpt.every_n_steps,
                every_n_epochs=None if ckpt.every_n_steps else ckpt.every_n_epochs,
            )
        )
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
        plugins=[AtomicCheckpointIO()],
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")


def train(config: RunConfig, *, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train the configured model on the configured data.

    Everything is checked first (:func:`~ephys_models.training.plan.plan_training`); the run
    folder is touched only when the whole configuration can run.

    Parameters
    ----------
    config
        A loaded run configuration.
    resume
        Continue from ``<run>/checkpoints/last.ckpt``: step count, optimiser and scheduler
        state and the position in the data order carry on exactly.
    overwrite
        Replace an existing run folder of the same name (only an ephys run folder).
    """
    return execute(plan_training(config, resume=resume, overwrite=overwrite))


def execute(plan: TrainingPlan) -> TrainResult:
    """Run a checked :class:`~ephys_models.training.plan.TrainingPlan`."""
    import torch

    config, folder = plan.config, plan.folder
    with ExitStack() as stack:
        if plan.owner:
            stack.enter_context(exclusive_lock(folder.lock_file, f"the run folder {folder.path}"))
            folder.clean_leftovers()
            if plan.replace:
                folder.replace()
            folder.create()
            import yaml

            run_data = plan.run_data
            (folder.path / "config.yaml").write_text(
                yaml.safe_dump(run_data, sort_keys=False), encoding="utf-8"
            )
            _write_json(folder.path / "data_spec.json", plan.data_spec)
        for warning in plan.warnings:
            logger.warning("%s", warning)
        pl.seed_everything(config.seed, workers=True, verbose=False)
        module = EphysModule(config, plan.data_spec)
        n_params = sum(p.numel() for p in module.model.parameters())
        spec = plan.data_spec
        logger.info(
            "%s: %s with %.2f M parameters on %d training windows",
            config.name,
            config.component_name("model"),
            n_params / 1e6,
            spec["splits"]["train"]["windows"],
        )
        assert config.data is not None
        datamodule = EphysDataModule(plan.builder, config.data, config.seed)
        has_val = spec["splits"]["val"]["windows"] > 0
        trainer = build_trainer(config, folder.path, has_val)
        last = folder.last_checkpoint
        with warnings.catch_warnings():
            # the plan already refused to reuse a run folder unless resuming or overwriting
            warnings.filterwarnings(
                "ignore", message="Checkpoint directory .* exists and is not empty"
            )
            trainer.fit(
                module,
                datamodule=datamodule,
                ckpt_path=last if plan.resume else None,
                weights_only=True,
            )
        if config.trainer.checkpoint.save_last and not trainer.interrupted:
            saved = last.is_file() and load_checkpoint(last, mmap=True).get("global_step")
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
            folder.path, last if last.is_file() else None, best, trainer.global_step, metrics
        )
        if plan.owner:
            _write_json(
                folder.path / "train_summary.json",
                {
                    "global_step": result.global_step,
                    "metrics": metrics,
                    "best_checkpoint": str(best) if best else None,
                    "last_checkpoint": str(result.last_checkpoint)
                    if result.last_checkpoint
                    else None,
                },
            )
    return result


def run_test(
    checkpoint: str | Path,
    config: RunConfig | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, float]:
    """Evaluate a checkpoint on the test split (teacher-forced loss and metrics).

    Parameters
    ----------
    checkpoint
        A checkpoint written by :func:`train`.
    config
        Run configuration overriding the one stored in the checkpoint (for example to test on
        other data, which must fit the model: see
        :func:`~ephys_models.training.compat.data_spec_problems`); by default the stored one.
    out_dir
        Where ``test_metrics.json`` is written: by default the run folder the checkpoint lies
        in; a checkpoint outside any run folder writes nothing unless ``out_dir`` is given.
    """
    module = EphysModule.from_checkpoint(checkpoint)
    run = config if config is not None else module.config
    run.require("data", command="test")
    run.resolve(["data"])
    builder = build_dataset(run)
    problems = data_spec_problems(module.data_spec, builder.data_spec())
    if problems:
        raise ConfigError(
            [f"data: the checkpoint cannot be tested on this data: {p}" for p in problems]
        )
    assert run.data is not None
    datamodule = EphysDataModule(builder, run.data, run.seed)
    folder = RunFolder.of_checkpoint(checkpoint)
    target = Path(out_dir) if out_dir is not None else (folder.path if folder else None)
    trainer = pl.Trainer(
        accelerator=run.trainer.accelerator,
        devices=1,
        precision=run.trainer.precision,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=target,
    )
    results = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        _write_json(
            target / "test_metrics.json", {"checkpoint": str(checkpoint), "metrics": metrics}
        )
    return metrics
