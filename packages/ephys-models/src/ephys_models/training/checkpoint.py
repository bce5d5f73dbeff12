"""The checkpoint format: what ephys adds to a Lightning checkpoint, reading it safely, choosing
a run's best checkpoint, and exporting the model.

This module owns the format's key names and version; everything else imports them from here.
A Lightning checkpoint written by ``ephys train`` carries, under :data:`CHECKPOINT_KEY`::

    {"format": 2,
     "config": <the resolved run configuration as data>,
     "data_spec": <the dataset's data_spec()>,
     "versions": {"ephys-core": ..., "torch": ..., ...},
     "score": {"monitor": "val/loss", "mode": "min", "value": 4.87 or None}}

and the random-generator states under :data:`RNG_KEY`. Checkpoints are read with
``torch.load(..., weights_only=True)``: they hold tensors, numbers and strings only, and the
model is rebuilt through the registries from the configuration, whatever was refactored since.
Format 1 (no ``score``) is still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ephys_core.config import RunConfig, load_config
from ephys_core.errors import ConfigError, EphysError
from ephys_core.logging import get_logger
from ephys_models.training.run_folder import RunFolder

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_KEY",
    "RNG_KEY",
    "CheckpointChoice",
    "CheckpointError",
    "checkpoint_metadata",
    "export",
    "find_checkpoint",
    "load_checkpoint",
    "load_exported",
    "read_metadata",
    "run_config_of",
    "select_checkpoint",
    "versions",
]

logger = get_logger(__name__)

#: where a checkpoint keeps the run configuration (plain data, never pickled classes)
CHECKPOINT_KEY = "ephys"
#: where a checkpoint keeps the random-generator states of the run
RNG_KEY = "ephys_rng"
#: version of what ephys stores under CHECKPOINT_KEY
CHECKPOINT_FORMAT = 2


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


def checkpoint_metadata(
    run_data: dict[str, Any],
    data_spec: dict[str, Any],
    score: dict[str, Any],
    package_versions: dict[str, str],
) -> dict[str, Any]:
    """The entry ephys stores under :data:`CHECKPOINT_KEY`."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": run_data,
        "data_spec": data_spec,
        "versions": package_versions,
        "score": score,
    }


def load_checkpoint(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint dictionary, loaded with ``weights_only=True``.

    Parameters
    ----------
    path
        A checkpoint written by ``ephys train``.
    mmap
        Memory-map the tensors instead of reading them (cheap when only metadata is needed).

    Raises
    ------
    CheckpointError
        The file is missing, truncated, corrupt, or was not written by ``ephys train``; the
        message is one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        detail = " ".join(str(err).split())[:160]
        raise CheckpointError(
            f"{path} is truncated, corrupt or not a PyTorch checkpoint "
            f"({type(err).__name__}: {detail}); use another checkpoint of the run or train again"
        ) from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint:
        raise CheckpointError(
            f"{path} was not written by `ephys train` (no {CHECKPOINT_KEY!r} entry)"
        )
    meta = checkpoint[CHECKPOINT_KEY]
    if not isinstance(meta, dict) or not {"config", "data_spec"} <= set(meta):
        raise CheckpointError(f"{path}: its {CHECKPOINT_KEY!r} entry is incomplete")
    if int(meta.get("format", 1)) > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} was written by a newer ephys (checkpoint format {meta['format']}, this "
            f"version reads up to {CHECKPOINT_FORMAT}); upgrade ephys-models"
        )
    return checkpoint


def read_metadata(path: str | Path) -> dict[str, Any]:
    """What ephys stored in a checkpoint, plus its ``global_step``, without reading weights."""
    checkpoint = load_checkpoint(path, mmap=True)
    meta = dict(checkpoint[CHECKPOINT_KEY])
    meta["global_step"] = int(checkpoint.get("global_step", 0))
    if "score" not in meta:
        meta["score"] = _lightning_score(checkpoint, meta)
    return meta


def _lightning_score(checkpoint: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The score of a format-1 checkpoint, from Lightning's ModelCheckpoint state."""
    trainer = meta["config"].get("trainer", {}).get("checkpoint", {})
    monitor, mode = trainer.get("monitor", "val/loss"), trainer.get("mode", "min")
    for state in checkpoint.get("callbacks", {}).values():
        if isinstance(state, dict) and state.get("monitor") == monitor:
            value = state.get("current_score")
            if value is not None:
                return {"monitor": monitor, "mode": mode, "value": float(value)}
    return {"monitor": monitor, "mode": mode, "value": None}


def run_config_of(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The run configuration stored in a checkpoint, with ``overrides`` applied."""
    meta = read_metadata(path)
    return load_config(meta["config"], overrides, hooks=False)


def find_checkpoint(run_dir: str | Path) -> Path:
    """The run's best checkpoint by its recorded score, or ``last.ckpt`` if none has one.

    Raises
    ------
    ConfigError
        The run has no usable checkpoint.
    """
    folder = Path(run_dir) / "checkpoints"
    scored: list[tuple[float, Path]] = []
    for path in sorted(folder.glob("best-*.ckpt")):
        try:
            score = read_metadata(path)["score"]
        except CheckpointError as err:
            logger.warning("ignoring %s: %s", path.name, err)
            continue
        if score.get("value") is None:
            continue
        sign = -1.0 if score.get("mode") == "max" else 1.0
        scored.append((sign * float(score["value"]), path))
    if scored:
        return min(scored, key=lambda item: item[0])[1]
    last = folder / "last.ckpt"
    if last.is_file():
        return last
    raise ConfigError(f"no checkpoint in {folder}; train first or pass --ckpt")


@dataclass(frozen=True)
class CheckpointChoice:
    """The checkpoint a command works on, its run configuration and its run folder.

    Attributes
    ----------
    checkpoint
        The checkpoint file.
    config
        The run configuration: the one given, else the one stored in the checkpoint.
    folder
        The run folder the checkpoint lies in (``None`` for a checkpoint outside any run).
    given_config
        Whether ``config`` came from the user rather than from the checkpoint.
    """

    checkpoint: Path
    config: RunConfig
    folder: RunFolder | None
    given_config: bool


def select_checkpoint(
    config: Path | None, checkpoint: Path | None, overrides: list[str] | None = None
) -> CheckpointChoice:
    """What ``ephys test`` and ``ephys eval`` work on.

    The configuration is ``config`` with ``overrides``, or else the one stored in the
    checkpoint (overrides then apply to it); the checkpoint is ``checkpoint``, or else the
    run's best by recorded score (or its last). A configuration with ``data.tokenizer`` reads
    the codes its training run encoded.
    """
    run = load_config(config, overrides or ()) if config is not None else None
    if run is not None and run.data is not None and run.data.tokenizer is not None:
        from ephys_models.training.tokenizer_data import tokenizer_codes, tokenizer_problems

        problems = tokenizer_problems(run)
        if problems:
            raise ConfigError(problems, source=run._source)
        run, _ = tokenizer_codes(run, encode=False)
    if checkpoint is None:
        if run is None:
            raise ConfigError("give a run configuration or --ckpt")
        checkpoint = find_checkpoint(run.run_dir)
    given = run is not None or bool(overrides)
    if run is None:
        run = run_config_of(checkpoint, overrides or ())
    return CheckpointChoice(Path(checkpoint), run, RunFolder.of_checkpoint(checkpoint), given)


def export(path: str | Path, out_dir: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` for the model of checkpoint ``path``.

    ``config.json`` holds the run configuration, the dataset's ``data_spec`` and the package
    versions; :func:`load_exported` rebuilds the model from the folder.
    """
    from safetensors.torch import save_file

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
        "versions": meta.get("versions", {}),
        "checkpoint": str(path),
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return out


def load_exported(folder: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a model exported by :func:`export`; returns ``(model, config data)``."""
    from safetensors.torch import load_file

    from ephys_core.plugins import get_registry

    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        weights = load_file(str(folder / "model.safetensors"))
    except FileNotFoundError as err:
        raise CheckpointError(f"{folder} is not an ephys export: {err}") from None
    except (ValueError, OSError) as err:
        raise CheckpointError(f"{folder}: the export is corrupt: {err}") from None
    spec = config["config"]["model"]
    model = get_registry("models").create(spec["name"], spec["params"])
    model.load_state_dict(weights)
    return model.eval(), config
