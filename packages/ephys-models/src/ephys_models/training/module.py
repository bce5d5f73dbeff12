"""The one Lightning module that trains any registered model with any registered loss."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from ephys_core.config import RunConfig, load_config
from ephys_core.plugins import get_registry
from ephys_models.training.checkpoint import (
    CHECKPOINT_KEY,
    RNG_KEY,
    checkpoint_metadata,
    load_checkpoint,
    versions,
)
from ephys_models.training.free_running import free_running_step
from ephys_models.training.optim import build_optimizer, build_scheduler

__all__ = ["EphysModule", "module_from_checkpoint"]


def _batch_size(inputs: Any) -> int:
    first = inputs["x"] if isinstance(inputs, dict) else inputs
    first = first[0] if isinstance(first, tuple | list) else first
    return int(first.shape[0])


class EphysModule(pl.LightningModule):
    """Wraps a model and a loss from the registries, built from plain configuration data.

    Parameters
    ----------
    config
        The resolved run configuration (:meth:`RunConfig.resolve`), with the model's
        data-derived parameters already bound. The model and the loss are built from its
        validated parameters, without validating them again.
    data_spec
        The dataset's ``data_spec()`` (kept in checkpoints for evaluation and export).

    Logged metrics are ``train/loss``, ``val/loss``, ``test/loss`` and ``<stage>/<metric>`` for
    every metric the loss declares. A model with an ``auxiliary_loss()`` method (a term of its
    last forward pass, such as a mixture of experts' load balancing) has it logged as
    ``<stage>/aux_loss`` and added to the training objective; the logged ``loss`` stays the
    data loss, comparable between models.
    """

    def __init__(self, config: RunConfig, data_spec: Mapping[str, Any]) -> None:
        super().__init__()
        assert config.model is not None and config.loss is not None
        self.config = config
        self.run_data = config.to_data()
        self.data_spec = dict(data_spec)
        self.model = get_registry("models").create(
            config.component_name("model"), config.params("model")
        )
        self.loss_fn = get_registry("losses").create(
            config.component_name("loss"), config.params("loss")
        )
        if isinstance(self.loss_fn, torch.nn.Module):
            self.add_module("loss_module", self.loss_fn)
        self.metric_names: tuple[str, ...] = tuple(type(self.loss_fn).metrics)
        self._forward = self.model
        if config.trainer.compile:
            # kept out of the module tree so checkpoints hold the plain model's weights
            object.__setattr__(self, "_forward", torch.compile(self.model))
        self._free_rng = random.Random(config.seed)
        self._versions: dict[str, str] | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> EphysModule:
        """The module of a checkpoint, rebuilt from its stored configuration, with its weights."""
        checkpoint = load_checkpoint(path)
        meta = checkpoint[CHECKPOINT_KEY]
        config = load_config(meta["config"], hooks=False).resolve(["model", "loss"])
        module = cls(config, meta["data_spec"])
        module.load_state_dict(checkpoint["state_dict"])
        return module

    def forward(self, inputs: Any) -> Any:
        """The model's outputs for ``inputs``."""
        return self._forward(inputs)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        inputs, targets = batch
        free = self.config.trainer.free_running
        if stage == "train" and free is not None and self._free_rng.random() < free.prob:
            outputs, targets = free_running_step(self._forward, inputs, targets, free)
        else:
            outputs = self._forward(inputs)
        result = self.loss_fn(outputs, targets)
        size = _batch_size(inputs)
        sync = stage != "train"
        self.log(
            f"{stage}/loss",
            result["loss"],
            prog_bar=True,
            on_step=stage == "train",
            on_epoch=True,
            batch_size=size,
            sync_dist=sync,
        )
        auxiliary = getattr(self.model, "auxiliary_loss", None)
        aux = auxiliary() if auxiliary is not None else None
        if aux is not None:  # e.g. MoE load balancing: optimised, not part of the data loss
            self.log(
                f"{stage}/aux_loss",
                aux,
                on_step=False,
                on_epoch=True,
                batch_size=size,
                sync_dist=sync,
            )
            if stage == "train":
                return result["loss"] + aux
        for name in self.metric_names:
            self.log(
                f"{stage}/{name}",
                result[name],
                on_step=False,
                on_epoch=True,
                batch_size=size,
                sync_dist=sync,
            )
        return result["loss"]

    def on_train_start(self) -> None:
        """Fit what the model fits in closed form on training data (its linear highway), once:
        a resumed run restores it from the checkpoint instead."""
        if getattr(self.model, "needs_data_fit", False):
            fit_to_training_data(self.model, self.trainer)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model, self.config.optim)
        scheduler = build_scheduler(
            optimizer, self.config.optim, int(self.trainer.estimated_stepping_batches)
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def _score(self) -> dict[str, Any]:
        """The monitored metric's current value, stored so the best checkpoint can be found."""
        section = self.config.trainer.checkpoint
        value = None
        trainer = self._trainer
        if trainer is not None:
            metric = trainer.callback_metrics.get(section.monitor)
            if isinstance(metric, torch.Tensor) and metric.numel() == 1:
                value = float(metric)
        return {"monitor": section.monitor, "mode": section.mode, "value": value}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the configuration as data, so the checkpoint rebuilds without pickles."""
        if self._versions is None:
            self._versions = versions()
        checkpoint[CHECKPOINT_KEY] = checkpoint_metadata(
            self.run_data, self.data_spec, self._score(), self._versions
        )
        checkpoint[RNG_KEY] = _rng_state(self._free_rng)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random generators, so dropout continues exactly after a resume."""
        if RNG_KEY in checkpoint:
            _set_rng_state(checkpoint[RNG_KEY], self._free_rng)


def fit_to_training_data(model: Any, trainer: pl.Trainer) -> None:
    """Call ``model.fit_to_data`` on the training batches, summed over processes.

    The random generators are forked, so reading the batches changes nothing that follows
    (the order of training batches, dropout): a run with the fit trains as one without would.
    """
    loader = trainer.train_dataloader
    if loader is None:
        raise RuntimeError("the training data loader is not set up; cannot fit the model")
    device = trainer.strategy.root_device

    def reduce(value: torch.Tensor) -> torch.Tensor:
        summed = trainer.strategy.reduce(value.to(device), reduce_op="sum")
        return summed.cpu() if isinstance(summed, torch.Tensor) else value

    with torch.random.fork_rng(devices=[]):
        model.fit_to_data((inputs for inputs, _ in loader), reduce)


def module_from_checkpoint(path: str | Path) -> EphysModule:
    """An :class:`EphysModule` with a checkpoint's weights (``EphysModule.from_checkpoint``)."""
    return EphysModule.from_checkpoint(path)


def _rng_state(free: random.Random) -> dict[str, Any]:
    """Generator states as tensors, numbers and tuples (loadable with ``weights_only=True``)."""
    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
        "free_running": free.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], free: random.Random) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(_tuples(state["python"]))
    free.setstate(_tuples(state["free_running"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    """Checkpoints may turn tuples into lists; random.setstate needs tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value
