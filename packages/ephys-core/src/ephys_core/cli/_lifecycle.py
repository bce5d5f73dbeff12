"""The commands of the ephys workflow, which packages other than ephys-core provide.

Each is an ``ephys.cli`` entry point of the package named here. When that package is not
installed, the command still appears in ``ephys --help`` and says what to install.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILTIN", "LIFECYCLE", "CommandInfo"]


@dataclass(frozen=True)
class CommandInfo:
    """A command's summary and where it comes from, known without importing it."""

    help: str
    provider: str


BUILTIN: dict[str, CommandInfo] = {
    "plugins": CommandInfo("List installed plugins and their status.", "ephys-core"),
    "info": CommandInfo("Describe one component: parameters, example config.", "ephys-core"),
    "config": CommandInfo("Validate run configurations and print their JSON schema.", "ephys-core"),
}

LIFECYCLE: dict[str, CommandInfo] = {
    "preprocess": CommandInfo("Turn raw recordings into a prepared dataset.", "ephys-data"),
    "data": CommandInfo("Inspect and convert prepared datasets.", "ephys-data"),
    "tokenizer": CommandInfo("Fit and apply tokenizers.", "ephys-tokenizers"),
    "train": CommandInfo("Train a model from a run configuration.", "ephys-models"),
    "test": CommandInfo("Test a trained checkpoint on the test split.", "ephys-models"),
    "export": CommandInfo("Export a checkpoint as safetensors plus config.", "ephys-models"),
    "eval": CommandInfo("Evaluate a trained model and write a report.", "ephys-eval"),
    "quickstart": CommandInfo(
        "Simulate or read data, train a small model, evaluate it: all in one.", "ephys-eval"
    ),
}

BUILTIN_MODULES = {
    "plugins": "ephys_core.cli.plugins:app",
    "info": "ephys_core.cli.info:app",
    "config": "ephys_core.cli.config:app",
}
