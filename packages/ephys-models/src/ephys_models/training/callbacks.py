"""Callbacks ephys adds to every training run."""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import lightning.pytorch as pl
import torch

from ephys_core.logging import get_logger

__all__ = ["LogProgress", "PerformanceMonitor"]

logger = get_logger(__name__)


def _primary(batch: Any) -> torch.Tensor:
    inputs = batch[0]
    while isinstance(inputs, dict | tuple | list):
        inputs = inputs["x"] if isinstance(inputs, dict) else inputs[0]
    return inputs


class PerformanceMonitor(pl.Callback):
    """Logs step time, samples/s, tokens/s and peak memory every ``every`` steps.

    Tokens are the elements of the primary input (channels x time steps per example), the unit
    of throughput for token models. Memory is the CUDA peak on GPUs and the process's peak
    resident size on CPUs. Nothing here spawns processes or blocks the GPU beyond one
    synchronisation per logged step.
    """

    def __init__(self, every: int = 10) -> None:
        self.every = every
        self._start = 0.0
        self._samples = self._tokens = 0
        self._steps = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._steps == 0:
            self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        x = _primary(batch)
        self._samples += int(x.shape[0])
        self._tokens += int(x.numel())
        self._steps += 1
        if self._steps < self.every:
            return
        if torch.cuda.is_available() and x.is_cuda:
            torch.cuda.synchronize()
            memory = torch.cuda.max_memory_allocated() / 2**30
        else:
            scale = 2**30 if sys.platform == "darwin" else 2**20  # bytes vs KiB
            memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        pl_module.log_dict(
            {
                "perf/step_time_s": elapsed / self._steps,
                "perf/samples_per_s": self._samples / elapsed,
                "perf/tokens_per_s": self._tokens / elapsed,
                "perf/peak_memory_gb": memory,
            },
            on_step=True,
            on_epoch=False,
            batch_size=int(x.shape[0]),
        )
        self._samples = self._tokens = self._steps = 0


class LogProgress(pl.Callback):
    """Progress as log lines, for runs without an interactive progress bar."""

    def __init__(self, every: int = 50) -> None:
        self.every = every

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step and step % self.every == 0:
            loss = trainer.callback_metrics.get("train/loss_step")
            total = trainer.max_steps if trainer.max_steps > 0 else "?"
            logger.info(
                "step %d/%s, epoch %d, train/loss %s",
                step,
                total,
                trainer.current_epoch,
                f"{float(loss):.4f}" if loss is not None else "n/a",
            )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        value = trainer.callback_metrics.get("val/loss")
        if value is not None and not trainer.sanity_checking:
            logger.info("step %d: val/loss %.4f", trainer.global_step, float(value))
