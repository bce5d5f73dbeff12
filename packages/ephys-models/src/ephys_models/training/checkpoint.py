"""Reading checkpoints safely and exporting trained models.

Checkpoints are read with ``torch.load(..., weights_only=True)``: they hold tensors, numbers
and strings only. The run configuration travels as plain data under the ``ephys`` key, so a
checkpoint rebuilds its model through the registries, with no pickled classes, whatever was
refactored since.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ephys_core.errors import EphysError

__all__ = [
    "CheckpointError",
    "export",
    "load_checkpoint",
    "load_exported",
    "module_from_checkpoint",
    "versions",
]


class CheckpointError(EphysError):
    """A checkpoint or export cannot be used."""


def versions() -> dict[str, str]:
    """Versions of the packages that shape a trained model."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in (
        "ephys-core",
        "ephys-models",
        "ephys-data",
        "ephys-tokenizers",
        "torch",
        "lightning",
        "transformers",
    ):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dictionary, loaded with ``weights_only=True``."""
    from ephys_models.training.module import CHECKPOINT_KEY

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint: {err}") from None
    if CHECKPOINT_KEY not in checkpoint:
        raise CheckpointError(
            f"{path} was not written by `ephys train` (no {CHECKPOINT_KEY!r} key)"
        )
    return checkpoint


def module_from_checkpoint(path: str | Path) -> Any:
    """An :class:`~ephys_models.training.module.EphysModule` with the checkpoint's weights."""
    from ephys_models.training.module import CHECKPOINT_KEY, EphysModule

    checkpoint = load_checkpoint(path)
    meta = checkpoint[CHECKPOINT_KEY]
    module = EphysModule(meta["config"], meta["data_spec"])
    module.load_state_dict(checkpoint["state_dict"])
    return module


def export(path: str | Path, out_dir: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` for the model of checkpoint ``path``.

    ``config.json`` holds the run configuration, the dataset's ``data_spec`` and the package
    versions; :func:`load_exported` rebuilds the model from the folder.
    """
    from safetensors.torch import save_file

    from ephys_models.training.module import CHECKPOINT_KEY

    checkpoint = load_checkpoint(path)
    meta = checkpoint[CHECKPOINT_KEY]
    prefix = "model."
    weights = {
        k[len(prefix) :]: v.contiguous()
        for k, v in checkpoint["state_dict"].items()
        if k.startswith(prefix)
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        weights, str(out / "model.safetensors"), metadata={"model": meta["config"]["model"]["name"]}
    )
    config = {
        "format": 1,
        "config": meta["config"],
        "data_spec": meta["data_spec"],
        "versions": meta["versions"],
        "checkpoint": str(path),
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return out


def load_exported(folder: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a model exported by :func:`export`; returns ``(model, config data)``."""
    from safetensors.torch import load_file

    from ephys_core import get_registry

    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        weights = load_file(str(folder / "model.safetensors"))
    except FileNotFoundError as err:
        raise CheckpointError(f"{folder} is not an ephys export: {err}") from None
    spec = config["config"]["model"]
    model = get_registry("models").create(spec["name"], spec["params"])
    model.load_state_dict(weights)
    return model.eval(), config
