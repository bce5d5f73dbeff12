"""The training engine: PyTorch Lightning driven by the run configuration and the registries.

Public API (imported on first use, so that ``import ephys_models.training`` and the checks of
:func:`plan_training` cost no torch or Lightning import):

:func:`plan_training`, :class:`TrainingPlan`
    Every check ``ephys train`` makes before any work.
:func:`train`, :func:`execute`, :class:`TrainResult`
    Training, from a configuration or from a plan.
:func:`run_test`
    Teacher-forced test metrics of a checkpoint.
:func:`select_checkpoint`, :func:`find_checkpoint`, :class:`CheckpointChoice`
    The checkpoint (best by recorded score) and configuration a command works on.
:func:`load_checkpoint`, :func:`read_metadata`, :class:`CheckpointError`
    Reading checkpoints safely.
:func:`module_from_checkpoint`, :func:`export`, :func:`load_exported`
    Rebuilding models from checkpoints and exports.
:func:`data_spec_problems`
    Whether new data fits a checkpoint.
:class:`RunFolder`
    A run's folder and the rules for changing it.
:func:`quiet_lightning`
    Lightning's start-up banners off the terminal.

``ephys-core`` never imports this package, so it stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ephys_models.training.checkpoint import (
        CheckpointChoice,
        CheckpointError,
        export,
        find_checkpoint,
        load_checkpoint,
        load_exported,
        read_metadata,
        select_checkpoint,
    )
    from ephys_models.training.compat import data_spec_problems
    from ephys_models.training.module import module_from_checkpoint
    from ephys_models.training.plan import TrainingPlan, plan_training
    from ephys_models.training.quiet import quiet_lightning
    from ephys_models.training.run_folder import RunFolder
    from ephys_models.training.runner import TrainResult, execute, run_test, train

_LAZY = {
    "CheckpointChoice": "checkpoint",
    "CheckpointError": "checkpoint",
    "export": "checkpoint",
    "find_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_exported": "checkpoint",
    "read_metadata": "checkpoint",
    "select_checkpoint": "checkpoint",
    "data_spec_problems": "compat",
    "module_from_checkpoint": "module",
    "TrainingPlan": "plan",
    "plan_training": "plan",
    "quiet_lightning": "quiet",
    "RunFolder": "run_folder",
    "TrainResult": "runner",
    "execute": "runner",
    "run_test": "runner",
    "train": "runner",
}

__all__ = [
    "CheckpointChoice",
    "CheckpointError",
    "RunFolder",
    "TrainResult",
    "TrainingPlan",
    "data_spec_problems",
    "execute",
    "export",
    "find_checkpoint",
    "load_checkpoint",
    "load_exported",
    "module_from_checkpoint",
    "plan_training",
    "quiet_lightning",
    "read_metadata",
    "run_test",
    "select_checkpoint",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
