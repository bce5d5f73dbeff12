"""The one Lightning module that trains any registered model with any registered loss."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from ephys_core.config import RunConfig
from ephys_core import get_registry
from ephys_models.training.free_running import free_running_step
from ephys_models.training.optim import build_optimizer, build_scheduler

__all__ = ["CHECKPOINT_KEY", "EphysModule"]

#: where a checkpoint keeps the run configuration (plain data, never pickled classes)
CHECKPOINT_KEY = "ephys"


def _batch_size(inputs: Any) -> int:
    first = inputs["x"] if isinstance(inputs, dict) else inputs
    first = first[0] if isinstance(first, tuple | list) else first
    return int(first.shape[0])


class EphysModule(pl.LightningModule):
    """Wraps a model and a loss from the registries, built from plain configuration data.

    Parameters
    ----------
    run
        The resolved run configuration as data (``RunConfig.to_data()``), with the model's
        data-derived parameters already filled in.
    data_spec
        The dataset's ``data_spec()`` (kept in checkpoints for evaluation and export).

    Logged metrics are ``train/loss``, ``val/loss``, ``test/loss`` and ``<stage>/<metric>`` for
    every metric the loss declares.
    """

    def __init__(self, run: Mapping[str, Any], data_spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.run_data = dict(run)
        self.data_spec = dict(data_spec)
        config = RunConfig.model_validate(self.run_data)
        assert config.model is not None and config.loss is not None
        self.config = config
        self.model = get_registry("models").create(config.model.name, config.model.params)
        loss_cls = get_registry("losses").load(config.loss.name)
        self.loss_fn = loss_cls(loss_cls.Config.model_validate(config.loss.params))
        if isinstance(self.loss_fn, torch.nn.Module):
            self.add_module("loss_module", self.loss_fn)
        self.metric_names: tuple[str, ...] = tuple(loss_cls.metrics)
        self._forward = self.model
        if config.trainer.compile:
            # kept out of the module tree so checkpoints hold the plain model's weights
            object.__setattr__(self, "_forward", torch.compile(self.model))
        self._free_rng = random.Random(config.seed)

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

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the configuration as data, so the checkpoint rebuilds without pickles."""
        from ephys_models.training.checkpoint import versions

        checkpoint[CHECKPOINT_KEY] = {
            "format": 1,
            "config": self.run_data,
            "data_spec": self.data_spec,
            "versions": versions(),
        }
        checkpoint["ephys_rng"] = _rng_state(self._free_rng)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random generators, so dropout continues exactly after a resume."""
        if "ephys_rng" in checkpoint:
            _set_rng_state(checkpoint["ephys_rng"], self._free_rng)


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
