"""``ephys tokenizer export``: a trained tokenizer model (``brainomni``) as a tokenizer folder.

A model that is a tokenizer names the registered tokenizer it becomes (``tokenizer_name``);
that tokenizer's ``from_trained(model, builder)`` builds it over the training data's
montage. The folder records what it was trained on (``fitted_on``): the training split's
content digest, sessions and seconds, the split, the run, the checkpoint and its SHA-256,
so its identity changes with the weights and with the data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger

__all__ = ["export_tokenizer"]

logger = get_logger(__name__)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def export_tokenizer(checkpoint: str | Path, out_dir: str | Path) -> Any:
    """Save the tokenizer a checkpoint's model is; returns the
    :class:`~ephys_tokenizers.artifact.TokenizerArtifact`.

    Raises
    ------
    ConfigError
        The checkpoint's model is not a tokenizer, or its training data cannot be opened (the
        montage and the data digest are read from it).
    """
    from ephys_core.plugins import get_registry
    from ephys_models.training import module_from_checkpoint
    from ephys_tokenizers.artifact import save_tokenizer

    checkpoint = Path(checkpoint)
    module = module_from_checkpoint(checkpoint)
    run = module.config
    model_name = run.component_name("model")
    name = getattr(module.model, "tokenizer_name", None)
    if not name:
        raise ConfigError(
            f"the checkpoint's model {model_name} is not a tokenizer (a tokenizer model such as "
            "brainomni can be exported)"
        )
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
        "checkpoint_sha256": _file_sha256(checkpoint),
        "ch_names": list(builder.ch_names),
    }
    artifact = save_tokenizer(tokenizer, name, out_dir, fitted_on)
    logger.info("exported %s %s from %s", name, artifact.identity, checkpoint)
    return artifact
