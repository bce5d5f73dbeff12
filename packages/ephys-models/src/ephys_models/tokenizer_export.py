"""``ephys tokenizer export``: a trained tokenizer model (``brainomni``) as a tokenizer folder.

A model that is a tokenizer names the registered tokenizer it becomes (``tokenizer_name``);
that tokenizer's ``from_trained(model, builder)`` builds it over the training data's
montage. The folder records what it was trained on (``fitted_on``): the training split's
content digest, sessions and seconds, the split, the run, the checkpoint and its SHA-256,
so its identity changes with the weights and with the data.

:func:`export_to_store` exports into a store of tokenizer folders, each named
``<name>-<first 12 characters of its identity>``, where :func:`find_export` finds the export
of a checkpoint by the checkpoint's SHA-256 (``ephys train`` with ``data.tokenizer`` uses
them).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger

__all__ = [
    "checkpoint_sha256",
    "checkpoint_tokenizer",
    "export_tokenizer",
    "export_to_store",
    "find_export",
]

logger = get_logger(__name__)


def checkpoint_sha256(path: str | Path) -> str:
    """The first 16 hex characters of a file's SHA-256 (an export's ``checkpoint_sha256``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _not_a_tokenizer(model: str) -> ConfigError:
    return ConfigError(
        f"the checkpoint's model {model} is not a tokenizer (a tokenizer model such as "
        "brainomni, braintokmix or vidtok_fsq can be exported)"
    )


def checkpoint_tokenizer(checkpoint: str | Path) -> str:
    """The registered tokenizer a checkpoint's model becomes (its ``tokenizer_name``), read
    from the checkpoint's metadata without loading its weights.

    Raises
    ------
    ConfigError
        The checkpoint's model is not a tokenizer.
    CheckpointError
        The file is not a readable checkpoint of ``ephys train``.
    """
    from ephys_core.plugins import get_registry
    from ephys_models.training import read_metadata

    model = read_metadata(checkpoint)["config"]["model"]["name"]
    name = get_registry("models").metadata(model, "tokenizer_name")
    if not name:
        raise _not_a_tokenizer(model)
    return str(name)


def _trained_tokenizer(checkpoint: Path) -> tuple[str, Any, dict[str, Any]]:
    """``(name, tokenizer, fitted_on)`` of the tokenizer a checkpoint's model is."""
    from ephys_core.plugins import get_registry
    from ephys_models.training import module_from_checkpoint

    module = module_from_checkpoint(checkpoint)
    run = module.config
    model_name = run.component_name("model")
    name = getattr(module.model, "tokenizer_name", None)
    if not name:
        raise _not_a_tokenizer(model_name)
    run.resolve(["data"])
    builder = get_registry("datasets").create(
        run.component_name("data.dataset"), run.params("data.dataset")
    )
    tokenizer = get_registry("tokenizers").load(name).from_trained(module.model, builder)
    train = builder.split_digest("train")
    split = getattr(run.params("data.dataset"), "split", None)
    fitted_on = {
        "train_sha256": train["sha256"],
        "train_sessions": train["sessions"],
        "train_seconds": train["seconds"],
        "split": split.model_dump(mode="json") if split is not None else None,
        "run": run.name,
        "model": model_name,
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": checkpoint_sha256(checkpoint),
        "ch_names": list(builder.ch_names),
    }
    return name, tokenizer, fitted_on


def export_tokenizer(checkpoint: str | Path, out_dir: str | Path) -> Any:
    """Save the tokenizer a checkpoint's model is; returns the
    :class:`~ephys_tokenizers.artifact.TokenizerArtifact`.

    Raises
    ------
    ConfigError
        The checkpoint's model is not a tokenizer, or its training data cannot be opened (the
        montage and the data digest are read from it).
    """
    from ephys_tokenizers.artifact import save_tokenizer

    checkpoint = Path(checkpoint)
    name, tokenizer, fitted_on = _trained_tokenizer(checkpoint)
    artifact = save_tokenizer(tokenizer, name, out_dir, fitted_on)
    logger.info("exported %s %s from %s", name, artifact.identity, checkpoint)
    return artifact


def find_export(checkpoint: str | Path, store: str | Path) -> Any | None:
    """The tokenizer folder of ``store`` exported from ``checkpoint`` (the same bytes), as a
    :class:`~ephys_tokenizers.artifact.TokenizerArtifact`; ``None`` if there is none."""
    from ephys_tokenizers.artifact import TokenizerArtifactError, load_tokenizer

    digest = checkpoint_sha256(checkpoint)
    for meta in sorted(Path(store).glob("*/tokenizer.json")):
        try:
            fitted_on = json.loads(meta.read_text(encoding="utf-8")).get("fitted_on") or {}
            if fitted_on.get("checkpoint_sha256") == digest:
                return load_tokenizer(meta.parent)
        except (OSError, ValueError, TokenizerArtifactError):
            continue  # unreadable or changed: not a usable export (exporting again replaces it)
    return None


def export_to_store(checkpoint: str | Path, store: str | Path) -> Any:
    """Export the tokenizer of ``checkpoint`` to ``<store>/<name>-<identity[:12]>``, where
    :func:`find_export` finds it again; returns the
    :class:`~ephys_tokenizers.artifact.TokenizerArtifact`."""
    from ephys_tokenizers.artifact import describe_tokenizer, save_tokenizer

    checkpoint = Path(checkpoint)
    name, tokenizer, fitted_on = _trained_tokenizer(checkpoint)
    identity = describe_tokenizer(name, tokenizer, fitted_on)["identity"]
    artifact = save_tokenizer(tokenizer, name, Path(store) / f"{name}-{identity[:12]}", fitted_on)
    logger.info("exported %s %s from %s to %s", name, identity, checkpoint, artifact.folder)
    return artifact
