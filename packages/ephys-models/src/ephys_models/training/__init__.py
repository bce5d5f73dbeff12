"""The training engine: PyTorch Lightning driven by the run configuration and the registries.

:func:`train` and :func:`run_test` back ``ephys train`` and ``ephys test``; :func:`export` backs
``ephys export``. ``ephys-core`` never imports this package, so it stays free of torch.
"""

from ephys_models.training.checkpoint import (
    export,
    load_checkpoint,
    load_exported,
    module_from_checkpoint,
)
from ephys_models.training.runner import TrainResult, run_test, train

__all__ = [
    "TrainResult",
    "export",
    "load_checkpoint",
    "load_exported",
    "module_from_checkpoint",
    "run_test",
    "train",
]
